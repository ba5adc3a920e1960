"""run(RunSpec): execute one RUN command in namespaces over an overlay of layer snapshots.

Vocabulary: the *lowerdirs* are committed, read-only layer snapshots (top-most first, see
store/layers.py); the *upperdir* receives everything the command changes and becomes the step's
layer (read back with overlaydiff.overlay_changes); the *workdir* is overlayfs' scratch space on
the same filesystem as the upperdir. Both are created by the caller, empty, per step.

Lifecycle: `run` makes a private run directory next to the upperdir (the rootfs mount point,
short links to the lowerdirs, the /etc/hosts, /etc/resolv.conf and /etc/hostname files), forks
the children described in child.py (spawn.py), streams the step's output to `on_output` while it
runs, and returns its exit status (128+N when killed by signal N). Afterwards it removes from the
upperdir the mount points the sandbox had to create (an /etc/hosts the image did not have, a
missing /proc...), so they never reach the layer (BuildKit does the same; buildah leaves them).

What a crash leaves: every mount exists only in the step's own mount namespace, so nothing stays
mounted on the host whatever happens. If the builder dies, the kernel kills the children
(PDEATHSIG) and the PID namespace with them; only the run directory and the upper/work dirs
remain on disk, inside the caller's temporary snapshot directory.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerbuild import privilege
from layerbuild.errors import RootfsError, SandboxError
from layerbuild.sandbox import copyroot, linux, netfiles
from layerbuild.sandbox.cancel import Cancel
from layerbuild.sandbox.child import ChildPlan
from layerbuild.sandbox.limits import Ulimit
from layerbuild.sandbox.mounts import (
    Mount,
    default_mounts,
    kernel_overlay_features,
    overlay_options,
)
from layerbuild.sandbox.spawn import UserNetPlan, execute
from layerbuild.store.layers import remove_tree

_NAMESPACES = linux.CLONE_NEWNS | linux.CLONE_NEWPID | linux.CLONE_NEWIPC | linux.CLONE_NEWUTS
_ETC_FILES = ("hosts", "resolv.conf", "hostname")
SNAPSHOTTERS = ("overlay", "fuse-overlayfs", "copy")
SNAPSHOTTER_ENV = "LAYERBUILD_SNAPSHOTTER"
NETWORK_MODES = ("default", "none", "host")


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One command to run: what, as whom, where, and over which snapshots."""

    argv: tuple[str, ...]
    env: tuple[str, ...]  # "KEY=value"
    cwd: str  # absolute path inside the rootfs; created when missing
    uid: int
    gid: int
    lowerdirs: tuple[Path, ...]  # top-most first
    upperdir: Path
    workdir: Path  # overlay upper/work, on the same filesystem
    network: str = "default"  # one of NETWORK_MODES (netfiles.py says what each reaches)
    hostname: str = "layerbuild"
    extra_mounts: tuple[Mount, ...] = ()  # RUN --mount: bind/cache/tmpfs/secret
    stdin: bytes | None = None
    groups: tuple[int, ...] = ()  # supplementary groups of the user
    add_hosts: tuple[netfiles.HostEntry, ...] = ()  # --add-host lines for /etc/hosts
    shm_size: int | None = None  # bytes of /dev/shm (--shm-size); None: docker's 64 MiB
    ulimits: tuple[Ulimit, ...] = ()  # --ulimit: set in the step's PID 1 before exec


def _discard(_: bytes) -> None:
    return None


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        print(f"warning: {message}", file=sys.stderr, flush=True)


# auto mode: the snapshotter that worked last in this process, tried first next time
_working: list[str] = []


def snapshotter_order(requested: str | None = None) -> list[str]:
    """Snapshotters to try: the one asked for (the CLI reads $LAYERBUILD_SNAPSHOTTER), or for
    "auto" (or None) overlay, then fuse-overlayfs when installed, then copy."""
    mode = requested or "auto"
    if mode != "auto":
        if mode not in SNAPSHOTTERS:
            raise SandboxError(
                f"unknown snapshotter {mode!r} (from {SNAPSHOTTER_ENV} or the caller)",
                hint=f"use one of auto, {', '.join(SNAPSHOTTERS)}",
            )
        return [mode]
    order = [m for m in SNAPSHOTTERS if m != "fuse-overlayfs" or shutil.which(m)]
    if _working:
        order = order[order.index(_working[0]) :]
    return order


def run(
    spec: RunSpec,
    *,
    on_output: Callable[[bytes], None] = _discard,
    rootless: bool | None = None,
    snapshotter: str | None = None,
    on_warning: Callable[[str], None] = _warn_once,
    cancel: Cancel | None = None,
) -> int:
    """Run `spec`; its exit status. SandboxError when the sandbox itself cannot be set up.

    The caller must be uid 0: real root, or root of the user namespace a rootless process
    enters at startup (userns.enter_rootless_userns). `rootless` (None: unless real root,
    privilege.py) makes the mounts follow the unprivileged rules. `on_output` receives the
    merged stdout/stderr as it arrives; an exception it raises (or KeyboardInterrupt) kills the
    step and is re-raised. `snapshotter` (None: "auto"; the CLI passes
    $LAYERBUILD_SNAPSHOTTER) picks how the rootfs is made; auto falls back from overlay to
    fuse-overlayfs to copy when the rootfs cannot be mounted (before anything ran), calling
    `on_warning` when it does. `cancel` kills the step when its build stops (cancel.py).
    """
    _check_spec(spec)
    if os.geteuid() != 0:
        raise SandboxError(
            "RUN needs uid 0: a rootless process must first become root of a user namespace",
            hint="call layerbuild.sandbox.userns.enter_rootless_userns() at startup, before "
            "starting threads (the layerbuild command does; see docs/run.md)",
        )
    rootless = privilege.rootless() if rootless is None else rootless
    order = snapshotter_order(snapshotter)
    for i, mode in enumerate(order):
        try:
            status = _run_with(spec, mode, rootless, on_output, cancel)
        except RootfsError as e:
            if i + 1 == len(order):
                raise SandboxError(e.message, hint=e.hint) from None
            on_warning(
                f"{e.message}; falling back to {order[i + 1]}"
                + (" (a full copy of the image per RUN: slow)" if order[i + 1] == "copy" else "")
            )
            continue
        if len(order) > 1:  # auto: start from here next time
            _working[:] = [mode]
        return status
    raise AssertionError("not reached: the loop returns or raises")


def _check_spec(spec: RunSpec) -> None:
    if spec.network not in NETWORK_MODES:
        raise SandboxError(
            f"network mode {spec.network!r} is not supported",
            hint=f"use one of {', '.join(NETWORK_MODES)}",
        )
    if not spec.argv:
        raise SandboxError("RUN has no command", hint="give the command to run")
    for d in (*spec.lowerdirs, spec.upperdir, spec.workdir):
        if not d.is_dir():
            raise SandboxError(
                f"overlay directory {d} does not exist",
                hint="lowerdirs come from LayerSnapshots.lowerdirs, upper and work dirs "
                "from LayerSnapshots.prepare_step",
            )


def _run_with(
    spec: RunSpec,
    mode: str,
    rootless: bool,
    on_output: Callable[[bytes], None],
    cancel: Cancel | None,
) -> int:
    rundir = Path(tempfile.mkdtemp(prefix=".run-", dir=spec.upperdir.parent))
    try:
        copy = rundir / "copy"
        before = copyroot.merge_lowers(spec.lowerdirs, copy) if mode == "copy" else None
        plan = _plan(spec, rundir, rootless, mode)
        _match_root(spec)
        net_plan = (
            UserNetPlan(rundir / "usernet.log", netfiles.wants_host_loopback(spec.add_hosts))
            if spec.network == "default"
            else None
        )
        status, reports = execute(plan, spec.stdin, on_output, net_plan, cancel)
        errors = [r for r in reports if "error" in r]
        if errors and errors[0].get("rootfs"):
            hint = errors[0].get("hint")
            raise RootfsError(
                str(errors[0]["error"]), hint=hint if isinstance(hint, str) else None
            )
        _remove_stubs(copy if before is not None else spec.upperdir, reports)
        if errors:
            hint = errors[0].get("hint")
            raise SandboxError(
                str(errors[0]["error"]), hint=hint if isinstance(hint, str) else None
            )
        if before is not None:
            copyroot.diff_into_upper(copy, before, spec.upperdir, privileged=not rootless)
        return status
    finally:
        remove_tree(rundir)


def _plan(spec: RunSpec, rundir: Path, rootless: bool, mode: str = "overlay") -> ChildPlan:
    links = rundir / "l"
    links.mkdir()
    for i, lower in enumerate(spec.lowerdirs):
        # overlay options must fit one page: "0:1:2" instead of 64-hex paths
        (links / str(i)).symlink_to(lower.absolute())
    (rundir / "rootfs").mkdir()
    etc = _write_etc_files(rundir / "etc", spec)
    data = overlay_options(
        [str(i) for i in range(len(spec.lowerdirs))],
        str(spec.upperdir.absolute()),
        str(spec.workdir.absolute()),
        rootless=rootless,
        features=kernel_overlay_features(),
    )
    own_net = spec.network != "host"
    sysfs_fallback = Mount("bind", "/sys", "/sys", ("rbind", "ro"))
    mounts: list[tuple[Mount, Mount | None]] = [
        (m, sysfs_fallback if m.type == "sysfs" else None)
        for m in default_mounts(rootless=rootless, own_netns=own_net, shm_size=spec.shm_size)
    ]
    mounts += [(Mount("bind", str(etc / n), f"/etc/{n}", ("bind",)), None) for n in _ETC_FILES]
    mounts += [(m, None) for m in spec.extra_mounts]
    flags = _NAMESPACES | (linux.CLONE_NEWNET if own_net else 0)
    return ChildPlan(
        argv=spec.argv,
        env=spec.env,
        cwd=spec.cwd or "/",
        uid=spec.uid,
        gid=spec.gid,
        groups=spec.groups,
        hostname=spec.hostname,
        rootfs=str(rundir / "rootfs"),
        links_dir=str(links),
        overlay_data=data,
        mounts=tuple(mounts),
        unshare_flags=flags,
        setgroups=privilege.setgroups_allowed(),
        cap_last=linux.cap_last_cap(),
        snapshotter=mode,
        fuse_argv=_fuse_argv(spec, rundir / "rootfs") if mode == "fuse-overlayfs" else (),
        bind_source=str(rundir / "copy") if mode == "copy" else "",
        rlimits=tuple((str(u), u.resource, u.soft, u.hard) for u in spec.ulimits),
    )


def _fuse_argv(spec: RunSpec, rootfs: Path) -> tuple[str, ...]:
    tool = shutil.which("fuse-overlayfs") or "fuse-overlayfs"
    lowers = ":".join(str(d.absolute()) for d in spec.lowerdirs)
    options = (
        f"lowerdir={lowers},upperdir={spec.upperdir.absolute()},workdir={spec.workdir.absolute()}"
    )
    return (tool, "-o", options, str(rootfs))


def _write_etc_files(etc: Path, spec: RunSpec) -> Path:
    etc.mkdir()
    (etc / "hosts").write_text(netfiles.hosts_file(spec.hostname, spec.network, spec.add_hosts))
    (etc / "hostname").write_text(spec.hostname + "\n")
    (etc / "resolv.conf").write_text(netfiles.resolv_conf(_read_host_resolv(), spec.network))
    for name in _ETC_FILES:
        os.chmod(etc / name, 0o644)
    return etc


def _read_host_resolv() -> str:
    try:
        return Path("/etc/resolv.conf").read_text(errors="replace")
    except OSError:
        return ""


def _match_root(spec: RunSpec) -> None:
    """Give a fresh upperdir the owner and mode of the image's root: overlayfs shows the
    upper root's attributes as "/", and mkdtemp made it 0700."""
    if not spec.lowerdirs or any(spec.upperdir.iterdir()):
        return
    st = os.stat(spec.lowerdirs[0])
    os.chown(spec.upperdir, st.st_uid, st.st_gid)
    os.chmod(spec.upperdir, st.st_mode & 0o7777)
    os.utime(spec.upperdir, ns=(st.st_atime_ns, st.st_mtime_ns))


def _stub_records(reports: list[dict[str, object]]) -> list[dict[str, Any]]:
    records = [r.get("stubs") for r in reports]
    return [s for rec in records if isinstance(rec, list) for s in rec if isinstance(s, dict)]


def _remove_stubs(upper: Path, reports: list[dict[str, object]]) -> None:
    """Take the mount points the sandbox created out of the upperdir, latest first, and give
    their parent back the mtime it had, unless the command itself changed that directory."""
    for stub in reversed(_stub_records(reports)):
        parent = upper / str(stub["parent"])
        try:
            current = os.lstat(parent).st_mtime_ns
        except FileNotFoundError:
            continue
        removed = False
        for rel in reversed(stub["paths"]):
            removed |= _remove_if_stub(upper / str(rel))
        if removed:
            mtime = int(stub["before"]) if current == stub["after"] else current
            os.utime(parent, ns=(mtime, mtime), follow_symlinks=False)


def _remove_if_stub(path: Path) -> bool:
    """Remove an empty file or directory that the sandbox created as a mount point."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)  # fails when the command put something in it: then it stays
        elif st.st_size == 0 and os.path.isfile(path):
            os.unlink(path)
        else:
            return False
    except OSError:
        return False
    return True
