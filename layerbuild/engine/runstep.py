"""RUN as a step: the command line a RUN means, the sandbox run, and its changes.

The sandbox (sandbox/) runs one command over the parent image's layer snapshots and leaves an
overlay upper directory; this module decides the argv (shell form, exec form, heredocs as
BuildKit treats them), the environment, and turns a failure into an error that shows the
command, its exit code and the last lines it printed.
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.lexer import heredoc_marker
from layerbuild.errors import BuildError
from layerbuild.image.changes import Change
from layerbuild.image.manifest import Layer
from layerbuild.store.layers import MAX_LOWERS, LayerSnapshots, StepDirs
from layerbuild.store.layout import Store

if TYPE_CHECKING:
    from layerbuild.sandbox.cancel import Cancel
    from layerbuild.sandbox.limits import Ulimit
    from layerbuild.sandbox.mounts import Mount
    from layerbuild.sandbox.netfiles import HostEntry

# BuildKit gives a RUN this PATH when the image sets none
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_TAIL_LINES = 12
_FULL_BELOW = 1 << 20  # bytes left on the store's file system after a failed step


def run_command(instr: ins.Run, shell: Sequence[str]) -> tuple[tuple[str, ...], bytes | None]:
    """The argv and stdin of a RUN. A whole-RUN heredoc that starts with `#!` runs under that
    interpreter, as Docker runs it (the script reaches it on stdin, which python, sh, bash,
    perl and node all read as the program when given no file); other forms see `run_argv`."""
    whole = _whole_heredoc(instr)
    if whole is not None and whole.content.startswith("#!"):
        line = whole.content.splitlines()[0][2:].strip()
        interpreter, _, arg = line.partition(" ")  # Linux passes the rest as one argument
        argv = (interpreter, arg.strip()) if arg.strip() else (interpreter,)
        return argv, whole.content.encode()
    return run_argv(instr, shell), None


def _whole_heredoc(instr: ins.Run) -> ins.Heredoc | None:
    """The heredoc when it is the RUN's whole command (`RUN <<EOF`, `RUN <<  'A B'`), else None.

    As BuildKit's dispatchRun: the command is one heredoc marker by the parser's own rule.
    """
    if not instr.shell_form or not instr.heredocs:
        return None
    return instr.heredocs[0] if heredoc_marker(instr.command[0]) is not None else None


def run_argv(instr: ins.Run, shell: Sequence[str]) -> tuple[str, ...]:
    """The argv of a RUN. A shell form whose whole command is one heredoc runs the heredoc as
    the script; other heredocs go to the shell with their bodies, which the shell reads itself
    (BuildKit dispatchRun does the same)."""
    if not instr.shell_form:
        return instr.command
    script = instr.command[0]
    whole = _whole_heredoc(instr)
    if whole is not None:
        return (*shell, whole.content)
    if instr.heredocs:
        script += "\n" + "".join(f"{h.content}{h.name}\n" for h in instr.heredocs)
    return (*shell, script)


def run_env(env: Mapping[str, str], home: str = "/root") -> tuple[str, ...]:
    """A RUN's environment: PATH and HOME filled in when the image sets none (HOME from the
    user's passwd entry, as runc does)."""
    items = dict(env)
    items.setdefault("PATH", DEFAULT_PATH)
    items.setdefault("HOME", home)
    return tuple(f"{k}={v}" for k, v in items.items())


def with_secrets(env: tuple[str, ...], secrets: Mapping[str, str]) -> tuple[str, ...]:
    """`env` with the secret variables set, replacing an ENV of the same name: BuildKit
    appends them after the step's environment, so they win."""
    kept = tuple(item for item in env if item.partition("=")[0] not in secrets)
    return (*kept, *(f"{k}={v}" for k, v in secrets.items()))


def cache_inputs(
    instr: ins.Run,
    env: Mapping[str, str],
    shell: Sequence[str],
    user: str,
    workdir: str,
    network: str,
    mounts: str = "",
    hosts: Sequence[HostEntry] = (),
    shm_size: int | None = None,
    ulimits: Sequence[Ulimit] = (),
) -> list[tuple[str, str]]:
    """What a RUN's result depends on besides its parent (BuildKit ExecOp.CacheMap).

    `mounts` is runmounts_prepare.mounts_key of its --mount flags ("" when it has none, so
    the keys of RUNs without mounts stay as they were); `hosts` likewise for --add-host, and
    `shm_size`/`ulimits` for --shm-size/--ulimit, which BuildKit keys too (a /dev/shm tmpfs
    mount and Meta.Ulimit of the ExecOp)."""
    inputs = [
        ("instruction", ins.describe(instr)),
        ("argv", json.dumps(run_command(instr, shell)[0])),
        # VarScope.keyed_env: proxy build args no ARG declares reach RUN but are left out
        ("env", json.dumps(sorted(env.items()))),
        ("user", user),
        ("workdir", workdir),
        ("network", network),
    ]
    if mounts:
        inputs.append(("mounts", mounts))
    if hosts:
        inputs.append(("hosts", json.dumps([[h.name, h.ip] for h in hosts])))
    if shm_size:
        inputs.append(("shm-size", str(shm_size)))
    if ulimits:
        inputs.append(("ulimits", json.dumps([[u.name, u.soft, u.hard] for u in ulimits])))
    return inputs


@dataclass
class RunResult:
    """What a RUN changed, and the upper dir that holds it."""

    changes: list[Change]
    step: StepDirs  # the upper dir the changes read from; commit or discard it


class Output:
    """Streams a step's output to the build events and keeps the last lines for errors."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._partial = b""

    def __call__(self, data: bytes) -> None:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line)

    def _line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        self.tail.append(text)
        self.log(text)

    def flush(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = b""


def execute_run(
    store: Store,
    snaps: LayerSnapshots,
    layers: Sequence[Layer],
    instr: ins.Run,
    *,
    argv: tuple[str, ...],
    env: tuple[str, ...],
    cwd: str,
    ids: tuple[int, int],
    network: str,
    log: Callable[[str], None],
    add_hosts: tuple[HostEntry, ...] = (),
    mounts: tuple[Mount, ...] = (),
    secret_env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    top: tuple[Path, ...] = (),
    shm_size: int | None = None,
    ulimits: tuple[Ulimit, ...] = (),
    snapshotter: str | None = None,
    cancel: Cancel | None = None,
) -> RunResult:
    """Run `instr` over `layers`; the caller packs `changes` and commits or discards `step`.

    `mounts` are its prepared --mount flags (runmounts_prepare.prepared); the mount points
    they need are taken out of the upper dir by the sandbox, so they never reach the layer.
    `secret_env`: variables of ``type=secret,env=`` mounts, over those of `env`.
    `top`: the snapshot directories of one more layer above `layers`, not yet packed
    (speedups/runahead.py), top-most first.
    `snapshotter`: how the sandbox makes the rootfs (sandbox/runner.py; None: auto).
    `cancel`: kills the step when the build stops (sandbox/cancel.py; None: never)."""
    del instr  # the argv already says what to run; kept for the callers' symmetry
    if secret_env:
        env = with_secrets(env, secret_env)
    if not top:
        lowers = tuple(snaps.lowerdirs(store, layers))
    else:
        lowers = (*top, *snaps.lowerdirs(store, layers, limit=MAX_LOWERS - len(top)))
    step = snaps.prepare_step()
    output = Output(log)
    try:
        # the runner (ctypes, namespaces) is loaded by the first RUN that executes
        from layerbuild.sandbox.overlaydiff import overlay_changes
        from layerbuild.sandbox.runner import RunSpec, run

        spec = RunSpec(
            argv,
            env,
            cwd,
            ids[0],
            ids[1],
            lowers,
            step.upper,
            step.work,
            network,
            extra_mounts=mounts,
            stdin=stdin,
            add_hosts=add_hosts,
            shm_size=shm_size,
            ulimits=ulimits,
        )
        code = run(spec, on_output=output, snapshotter=snapshotter, cancel=cancel)
        output.flush()
        if code != 0:
            raise _failed(
                argv, code, list(output.tail), network, full=_full_disk(step.upper, store.root)
            )
        # rootless, this process is root of its user namespace (sandbox/userns.py): the
        # owners it reads in the upper dir are the ids the step saw
        changes = list(overlay_changes(step.upper, lowerdirs=lowers))
    except BaseException:
        snaps.discard(step)
        raise
    return RunResult(changes, step)


# what resolvers, apt, pip, npm, curl and wget print when there is no network to use
_OFFLINE_SIGNS = (
    "temporary failure in name resolution",
    "could not resolve",
    "name or service not known",
    "bad address",
    "network is unreachable",
    "no address associated",
    "getaddrinfo",
    "eai_again",
    "enotfound",
    "failed to establish a new connection",
)


def _offline_hint(network: str, tail: list[str]) -> str | None:
    if network != "none":
        return None
    text = "\n".join(tail).lower()
    if not any(sign in text for sign in _OFFLINE_SIGNS):
        return None
    return (
        "the step's output shows name resolution or connection failures, and this step has "
        "no network (--network none): drop RUN --network=none and build --network none to "
        "give it the default network (outbound access), or use --network host"
    )


def _full_disk(upper: Path, store: Path) -> str | None:
    """The store, when the file system the step wrote to is (nearly) full: a command that
    failed there most likely failed for that, though its own message may say "I/O error"."""
    try:
        st = os.statvfs(upper)
    except OSError:
        return None
    if st.f_bavail * st.f_frsize >= _FULL_BELOW and not (st.f_files and st.f_favail == 0):
        return None
    return str(store)


def _failed(
    argv: tuple[str, ...],
    code: int,
    tail: list[str],
    network: str,
    *,
    full: str | None = None,
) -> BuildError:
    command = " ".join(argv)
    if len(command) > 200:
        command = command[:197] + "..."
    what = f"killed by signal {code - 128}" if code > 128 else f"exit code {code}"
    shown = "\n".join(f"  | {line}" for line in tail)
    message = f"process {command!r} did not complete successfully: {what}"
    if shown:
        message += f"\nlast output:\n{shown}"
    hint = "the command was not found in the image" if code == 127 else None
    if full is not None:
        hint = (
            f"the file system of the store at {full}, where the step writes, is full: free "
            "space there (`layerbuild prune` removes unused images and build cache), or use "
            "a store on another file system with --root or LAYERBUILD_ROOT"
        )
    from layerbuild.engine.idhint import current_hint  # here: only a failed RUN needs hints
    from layerbuild.engine.tlshint import tls_hint

    return BuildError(
        message, hint=_offline_hint(network, tail) or current_hint(tail) or tls_hint(tail) or hint
    )
