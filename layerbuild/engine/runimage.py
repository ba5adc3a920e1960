"""Running a stored image like `docker run --rm`, in the RUN sandbox (`layerbuild run`).

The image's layer snapshots are the overlay's lower directories and a throwaway upper dir
takes what the command writes: nothing of a run is kept. ENTRYPOINT and CMD combine as in
`docker run`: arguments after IMAGE replace CMD, ENTRYPOINT stays.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from layerbuild.engine.platforms import host_platform
from layerbuild.engine.runstep import run_env
from layerbuild.engine.users import resolve_user
from layerbuild.errors import BuildError, HostError
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Platform
from layerbuild.image.manifest import Layer
from layerbuild.store import images as store_images
from layerbuild.store.layers import LayerSnapshots, StepDirs
from layerbuild.store.layout import Store

if TYPE_CHECKING:
    from layerbuild.sandbox.netfiles import HostEntry


def command_argv(
    config: ImageConfig, args: Sequence[str], entrypoint: str | None = None
) -> tuple[str, ...]:
    """docker run's rule: ENTRYPOINT + (args or CMD); --entrypoint replaces ENTRYPOINT and
    drops the image's CMD."""
    c = config.config
    if entrypoint is not None:
        return (entrypoint, *args) if entrypoint else tuple(args)
    return (*(c.entrypoint or ()), *(args or c.cmd or ()))


def run_env_of(config: ImageConfig, overrides: Sequence[str]) -> tuple[str, ...]:
    env = config.config.env_dict()
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
        elif key in os.environ:
            env[key] = os.environ[key]  # docker run -e NAME passes the caller's value
    return run_env(env)


def _read_from_lowers(lowers: Sequence[Path], path: str) -> str | None:
    """A file of the merged image as the overlay would show it (top-most lower first)."""
    for lower in lowers:
        candidate = lower / path
        if candidate.is_symlink() or not os.path.lexists(candidate):
            continue
        if candidate.is_file():
            return candidate.read_text("utf-8", "replace")
        return None  # a whiteout (character device) or a directory hides lower ones
    return None


def run_image(
    store: Store,
    name: str,
    args: Sequence[str],
    *,
    env: Sequence[str] = (),
    user: str | None = None,
    workdir: str | None = None,
    network: str = "default",
    entrypoint: str | None = None,
    add_hosts: Sequence[HostEntry] = (),
    snapshotter: str | None = None,
    platform: Platform | None = None,
) -> int:
    """Run image `name` like `docker run --rm`; the command's exit status. `snapshotter`:
    how the sandbox makes the rootfs (sandbox/runner.py; None: auto). `platform`: the image of
    an index to run (default: this machine's, else linux/amd64)."""
    from layerbuild.sandbox.binfmt import require_emulation

    desc = store_images.resolve(store, name)
    _, manifest, config = store_images.read_image(store, desc, platform or _host_default())
    require_emulation(config.architecture, host_platform().architecture)
    layers = [
        Layer(diff, d.digest, d.size, d.media_type)
        for diff, d in zip(config.diff_ids, manifest.layers, strict=True)
    ]
    argv = command_argv(config, args, entrypoint)
    if not argv:
        raise BuildError(
            f"image {name} has no CMD or ENTRYPOINT, and no command was given",
            hint=f"name the command: layerbuild run {name} /bin/sh -c '...'",
        )
    with store.lock(shared=True):
        snaps, lowers = _unpacked(store, name, layers)
        spec_user = user if user is not None else config.config.user
        ids = (0, 0)
        if spec_user:
            passwd, group = (_read_from_lowers(lowers, f"etc/{f}") for f in ("passwd", "group"))
            ids = resolve_user(spec_user, passwd, group)
        step = _step_dirs(store, snaps)
        try:
            from layerbuild.sandbox.runner import RunSpec, run  # not for every command

            spec = RunSpec(
                argv=argv,
                env=run_env_of(config, env),
                cwd=workdir or config.config.working_dir or "/",
                uid=ids[0],
                gid=ids[1],
                lowerdirs=lowers,
                upperdir=step.upper,
                workdir=step.work,
                network=network,
                stdin=None if sys.stdin.isatty() else sys.stdin.buffer.read(),
                add_hosts=tuple(add_hosts),
            )
            return run(spec, on_output=_write_stdout, snapshotter=snapshotter)
        finally:
            snaps.discard(step)


def _unpacked(
    store: Store, name: str, layers: Sequence[Layer]
) -> tuple[LayerSnapshots, tuple[Path, ...]]:
    """The image's layer snapshots (unpacked the first time), top-most first."""
    try:
        snaps = LayerSnapshots(store.root)
        return snaps, tuple(snaps.lowerdirs(store, layers))
    except OSError as e:
        if store.writable or e.errno != errno.EROFS:
            raise
        raise HostError(
            f"image {name} is not unpacked in the store at {store.root}, which is read-only",
            path=str(store.root),
            errno_code=errno.EROFS,
            hint="run it once while the store is writable (that unpacks its layers), or use "
            "a writable store with --root or LAYERBUILD_ROOT",
        ) from e


def _step_dirs(store: Store, snaps: LayerSnapshots) -> StepDirs:
    """The run's throwaway upper and work directories: in the store, or, when the store is
    read-only, in a private directory under $TMPDIR (overlay wants them on one file system
    that can hold them; the image's snapshots stay the lower directories, read only)."""
    if store.writable:
        return snaps.prepare_step()
    tmp = Path(tempfile.mkdtemp(prefix="layerbuild-run-"))
    (tmp / "upper").mkdir(mode=0o755)
    (tmp / "work").mkdir(mode=0o700)
    return StepDirs(tmp, tmp / "upper", tmp / "work")


def _write_stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _host_default() -> Platform | None:
    """This machine's platform, when it is not linux/amd64 (the default of an index)."""
    host = host_platform()
    return None if host == Platform() else host
