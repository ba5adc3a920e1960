"""Metadata instructions as pure updates of the image config (Docker/BuildKit semantics).

ENV, LABEL, EXPOSE, VOLUME, STOPSIGNAL, USER, HEALTHCHECK, SHELL, CMD, ENTRYPOINT, ONBUILD and
MAINTAINER change only the config; each adds an `empty_layer` history entry, as BuildKit does.
WORKDIR changes the config here and, in the executor, creates the directory in a layer.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, replace

from layerbuild.dockerfile import instructions as ins
from layerbuild.image.config import ContainerConfig, Healthcheck, ImageConfig

DEFAULT_SHELL = ("/bin/sh", "-c")


@dataclass(frozen=True, slots=True)
class StageMeta:
    """What a stage's metadata instructions have set so far."""

    config: ImageConfig
    cmd_set: bool = False  # CMD given in this stage: ENTRYPOINT then keeps it

    @property
    def shell(self) -> tuple[str, ...]:
        return self.config.config.shell or DEFAULT_SHELL

    @property
    def workdir(self) -> str:
        return self.config.config.working_dir or "/"


def command_line(
    command: tuple[str, ...], shell_form: bool, shell: tuple[str, ...]
) -> tuple[str, ...]:
    """The argv of a CMD/ENTRYPOINT/RUN: shell form wrapped with the current SHELL."""
    return (*shell, command[0]) if shell_form else command


def resolve_workdir(current: str, path: str) -> str:
    """WORKDIR is relative to the previous WORKDIR; the result is absolute and cleaned."""
    joined = path if path.startswith("/") else posixpath.join(current or "/", path)
    return posixpath.normpath(joined).replace("//", "/")


def with_labels(config: ImageConfig, labels: Mapping[str, str]) -> ImageConfig:
    """The final image's config with `build --label` set over the Dockerfile's LABELs
    (BuildKit's dockerfile2llb does this after the last step: no history entry, no step key)."""
    if not labels:
        return config
    merged = dict(config.config.labels)
    merged.update(labels)
    return replace(config, config=replace(config.config, labels=tuple(sorted(merged.items()))))


def apply_metadata(meta: StageMeta, instr: ins.Instruction) -> StageMeta:
    """The StageMeta after an (already expanded) metadata instruction."""
    c = meta.config.config
    if isinstance(instr, ins.Env):
        for key, value in instr.pairs:
            c = c.with_env(key, value)
    elif isinstance(instr, ins.Label):
        labels = dict(c.labels)
        labels.update(instr.pairs)
        c = replace(c, labels=tuple(sorted(labels.items())))
    elif isinstance(instr, ins.Expose):
        ports = set(c.exposed_ports) | {p for spec in instr.ports for p in expose_ports(spec)}
        c = replace(c, exposed_ports=tuple(sorted(ports)))
    elif isinstance(instr, ins.Volume):
        c = replace(c, volumes=tuple(sorted(set(c.volumes) | set(instr.paths))))
    elif isinstance(instr, ins.StopSignal):
        c = replace(c, stop_signal=instr.signal)
    elif isinstance(instr, ins.User):
        c = replace(c, user=instr.user)
    elif isinstance(instr, ins.Workdir):
        c = replace(c, working_dir=resolve_workdir(c.working_dir, instr.path))
    elif isinstance(instr, ins.Shell):
        c = replace(c, shell=instr.command)
    elif isinstance(instr, ins.Healthcheck):
        c = replace(c, healthcheck=_healthcheck(instr))
    elif isinstance(instr, ins.Onbuild):
        c = replace(c, on_build=(*c.on_build, instr.trigger))
    elif isinstance(instr, ins.Cmd):
        cmd = command_line(instr.command, instr.shell_form, meta.shell)
        c = replace(c, cmd=cmd, args_escaped=False)
        return StageMeta(replace(meta.config, config=c), cmd_set=True)
    elif isinstance(instr, ins.Entrypoint):
        ep = command_line(instr.command, instr.shell_form, meta.shell)
        # BuildKit dispatchEntrypoint: a CMD inherited from the base is reset by ENTRYPOINT
        c = replace(c, entrypoint=ep, cmd=c.cmd if meta.cmd_set else None)
    elif isinstance(instr, ins.Maintainer):
        return replace(meta, config=replace(meta.config, author=instr.name))
    else:
        raise TypeError(f"not a metadata instruction: {type(instr).__name__}")
    return replace(meta, config=replace(meta.config, config=c))


def expose_ports(spec: str) -> list[str]:
    """`80`, `53/UDP`, `8000-8002/tcp` → ["80/tcp"], ["53/udp"], one entry per port (as Docker's
    nat.ParsePortSpecs stores them); anything else is kept as written."""
    port, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    low, sep, high = port.partition("-")
    if sep and low.isdigit() and high.isdigit() and int(low) <= int(high):
        return [f"{n}/{proto}" for n in range(int(low), int(high) + 1)]
    return [f"{port}/{proto}"]


def _healthcheck(instr: ins.Healthcheck) -> Healthcheck:
    if instr.test is None:
        return Healthcheck(test=("NONE",))
    return Healthcheck(
        test=instr.test,
        interval=instr.interval_ns,
        timeout=instr.timeout_ns,
        start_period=instr.start_period_ns,
        start_interval=instr.start_interval_ns,
        retries=instr.retries,
    )


def new_stage_config(base: ImageConfig | None, architecture: str, os: str) -> ImageConfig:
    """The config a stage starts from: its base's (history and layers kept) or an empty one."""
    if base is None:
        return ImageConfig(architecture=architecture, os=os, config=ContainerConfig())
    # ONBUILD triggers of the base run in this stage; they are not inherited further
    return replace(base, config=replace(base.config, on_build=()), created=None)
