"""The two forked processes of a RUN step: the namespace holder and the step's PID 1.

Post-fork rules (pyroute2's, and ours): code here runs in a child of a possibly multi-threaded
builder, so it imports nothing, logs nothing and takes no locks; it talks to the builder only
through the pipes in `ChildFds`, and it always leaves through ``os._exit`` so the builder's
own code (finally blocks, atexit, pytest) never runs twice.

1. `outer_main` (the builder's child) sets PDEATHSIG (dies with the builder), unshares the
   namespaces (never a user namespace: a rootless builder already is root of its own, see
   userns.py), and forks
2. `init_main`, PID 1 of the new PID namespace, which makes its mounts private, mounts the
   overlay and the container's /dev, /proc, /sys and /etc files, pivots into the rootfs,
   detaches the host root, drops to the step's user and capabilities, closes every other fd and
   execs the command. When it exits the kernel kills every process left in the namespace, and
   when the last process of the mount namespace is gone every mount in it goes too: a killed
   step can leave nothing mounted on the host.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import select
import signal
from dataclasses import dataclass
from typing import NoReturn

from layerbuild.errors import RootfsError, SandboxError
from layerbuild.sandbox import linux
from layerbuild.sandbox.mounts import Mount, apply_mount

SETUP_FAILED = 125  # what Docker uses for "the container runtime failed"
# Docker's default capability set (moby oci/caps/defaults.go); every other one is dropped
# from the bounding set, so neither root nor a setuid binary in the step can gain it.
DEFAULT_CAPS = frozenset({0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31})
_DEV_LINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
)


@dataclass(frozen=True, slots=True)
class ChildPlan:
    """Everything the children need, computed by the builder before forking."""

    argv: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    hostname: str
    rootfs: str  # host directory the overlay is mounted on
    links_dir: str  # cwd for the overlay mount: lowerdir names are relative to it
    overlay_data: str
    mounts: tuple[tuple[Mount, Mount | None], ...]  # (mount, fallback if refused)
    unshare_flags: int
    setgroups: bool  # False in a user namespace without subordinate ids: setgroups is denied
    cap_last: int  # highest capability number of this kernel (read before forking)
    # the rootfs, by snapshotter (runner.py): overlay_data for "overlay", fuse_argv for
    # "fuse-overlayfs" (the mount point is its last argument), a directory to bind for "copy"
    snapshotter: str = "overlay"
    fuse_argv: tuple[str, ...] = ()
    bind_source: str = ""
    # --ulimit values: (as the user wrote them, resource, soft, hard); -1 is RLIM_INFINITY
    rlimits: tuple[tuple[str, int, int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class ChildFds:
    out_w: int  # stdout+stderr of the step
    report_w: int  # JSON lines to the builder: {"stubs": ...} / {"error": ..., "hint": ...}
    lifeline_r: int  # EOF when the outer process is gone
    lifeline_w: int
    stdin_r: int | None
    parent_ends: tuple[int, ...]  # the builder's ends of these pipes: closed first thing
    # default network (usernet.py): the outer process says its network namespace exists on
    # `netns_w`, then waits on `net_go_r` until the builder has wired it up
    netns_w: int | None = None
    net_go_r: int | None = None


def _report(fd: int, message: dict[str, object]) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


def _report_failure(fd: int, exc: BaseException) -> None:
    if isinstance(exc, SandboxError):
        rootfs = isinstance(exc, RootfsError)
        _report(fd, {"error": exc.message, "hint": exc.hint, "rootfs": rootfs})
    elif isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        _report(fd, {"error": f"{exc.strerror or exc}{where}"})
    else:
        _report(fd, {"error": f"{type(exc).__name__}: {exc}"})


def outer_main(plan: ChildPlan, fds: ChildFds, builder: int) -> NoReturn:
    """The builder's child: own namespaces, then wait for PID 1 and pass on its status."""
    code = SETUP_FAILED
    try:
        for fd in fds.parent_ends:
            os.close(fd)  # else the step would never see EOF on its stdin
        _close_others(fds)
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != builder:
            os._exit(code)  # the builder died before PDEATHSIG was armed
        linux.unshare(plan.unshare_flags)
        if not _network_wired(fds):
            os._exit(code)  # the builder could not set the network up: it reports why
        pid = os.fork()
        if pid == 0:
            init_main(plan, fds)
        os.close(fds.lifeline_r)
        os.close(fds.out_w)
        _, status = os.waitpid(pid, 0)
        exit_code = os.waitstatus_to_exitcode(status)
        code = exit_code if exit_code >= 0 else 128 - exit_code
    except BaseException as e:  # never return into the builder's code
        _report_failure(fds.report_w, e)
    finally:
        os._exit(code)


def _close_others(fds: ChildFds) -> None:
    """Close what other threads of the builder had open when it forked (the pipes of a step of
    another stage, engine/scheduler.py): held here, they would keep that step from seeing the
    end of its output, or its stdin from ending."""
    own = (fds.out_w, fds.report_w, fds.lifeline_r, fds.lifeline_w, fds.stdin_r)
    low = 3
    for fd in sorted(fd for fd in (*own, fds.netns_w, fds.net_go_r) if fd is not None):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def _network_wired(fds: ChildFds) -> bool:
    """Tell the builder our network namespace exists and wait until it has wired it up;
    False when it gave up (its end closed without a go)."""
    if fds.netns_w is None or fds.net_go_r is None:
        return True
    os.write(fds.netns_w, b"n")
    os.close(fds.netns_w)
    go = os.read(fds.net_go_r, 1)
    os.close(fds.net_go_r)
    return go == b"g"


def _arm_pdeathsig(fds: ChildFds) -> None:
    """Die with the outer process; getppid() is 0 across a PID namespace, so ask the pipe."""
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    readable, _, _ = select.select([fds.lifeline_r], [], [], 0)
    if readable:
        os._exit(SETUP_FAILED)


def init_main(plan: ChildPlan, fds: ChildFds) -> NoReturn:
    """PID 1 of the step: mounts, pivot_root, user, capabilities, exec. Never returns."""
    try:
        os.close(fds.lifeline_w)
        _arm_pdeathsig(fds)
        os.setsid()
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
        linux.sethostname(plan.hostname)
        if plan.unshare_flags & linux.CLONE_NEWNET:
            linux.loopback_up()
        _mount_rootfs(plan)
        stubs: list[dict[str, object]] = []
        for mount, fallback in plan.mounts:
            stubs += _stubbed(plan.rootfs, mount, fallback)
        _report(fds.report_w, {"stubs": stubs})
        _populate_dev(plan.rootfs)
        stdin = fds.stdin_r if fds.stdin_r is not None else os.open("/dev/null", os.O_RDONLY)
        _pivot(plan.rootfs)
        _enter_cwd(plan.cwd)
        _set_rlimits(plan.rlimits)
        _drop_capabilities(plan.cap_last)
        _become_user(plan)
        _arm_pdeathsig(fds)  # a credential change clears it (kernel commit_creds)
        os.dup2(stdin, 0)
        os.dup2(fds.out_w, 1)
        os.dup2(fds.out_w, 2)
        os.closerange(3, fds.report_w)
        os.closerange(fds.report_w + 1, os.sysconf("SC_OPEN_MAX"))
    except BaseException as e:  # never return into the builder's code
        _report_failure(fds.report_w, e)
        os._exit(SETUP_FAILED)
    _exec(plan)


def _mount_rootfs(plan: ChildPlan) -> None:
    os.chdir(plan.links_dir)
    if plan.snapshotter == "copy":
        # pivot_root needs a mount point: the working copy bound onto itself
        linux.mount(plan.bind_source, plan.rootfs, None, linux.MS_BIND | linux.MS_REC)
        return
    if plan.snapshotter == "fuse-overlayfs":
        _mount_fuse(plan.fuse_argv)
        # pivot_root moves the root of every process of the mount namespace that has the old
        # root, which would put the daemon inside its own mount (it then deadlocks on its own
        # requests): the step continues in a copy of this namespace, the daemon stays here
        linux.unshare(linux.CLONE_NEWNS)
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
        return
    try:
        linux.mount("overlay", plan.rootfs, "overlay", 0, plan.overlay_data)
    except OSError as e:
        raise RootfsError(
            f"overlayfs not available: mounting the rootfs failed ({e.strerror})",
            hint="needs a kernel with overlayfs (rootless: Linux >= 5.11 for userxattr); "
            "an overlay or FUSE filesystem under the store cannot hold an upper dir: "
            "put the store (--root) on ext4, xfs or btrfs",
        ) from e


def _mount_fuse(argv: tuple[str, ...]) -> None:
    """Start fuse-overlayfs in this mount namespace; it daemonizes once the mount is up. It
    lives in the step's PID namespace, so it dies with the step like every other process."""
    pid = os.fork()
    if pid == 0:
        try:
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, os.sysconf("SC_OPEN_MAX"))
            os.execv(argv[0], list(argv))
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        code = os.waitstatus_to_exitcode(status)
        raise RootfsError(
            f"fuse-overlayfs could not mount the rootfs (exit status {code})",
            hint="needs /dev/fuse and the fuse-overlayfs package; "
            "LAYERBUILD_SNAPSHOTTER=copy works everywhere (slower)",
        )


def _stubbed(rootfs: str, mount: Mount, fallback: Mount | None) -> list[dict[str, object]]:
    """Apply one mount; describe the mount points it had to create and the mtimes of their
    parent before and after, so the builder can take them out of the layer again."""
    stub = apply_mount(mount, rootfs, fallback)
    if stub is None:
        return []
    after = os.lstat(os.path.join(rootfs, stub.parent)).st_mtime_ns
    return [
        {
            "paths": list(stub.paths),
            "parent": stub.parent,
            "before": stub.parent_mtime_ns,
            "after": after,
        }
    ]


def _populate_dev(rootfs: str) -> None:
    for name, target in _DEV_LINKS:
        os.symlink(target, os.path.join(rootfs, "dev", name))


def _pivot(rootfs: str) -> None:
    """pivot_root(".", ".") then detach the old root (runc's way: no put_old directory)."""
    os.chdir(rootfs)
    linux.pivot_root(".", ".")
    linux.umount2(".", linux.MNT_DETACH)
    os.chdir("/")


def _enter_cwd(cwd: str) -> None:
    # resolved after pivot_root, so a symlink in the image cannot lead out of the rootfs
    os.makedirs(cwd, mode=0o755, exist_ok=True)
    os.chdir(cwd)


def _set_rlimits(rlimits: tuple[tuple[str, int, int, int], ...]) -> None:
    """Before capabilities and user are dropped: raising a hard limit needs CAP_SYS_RESOURCE
    (runc sets them at the same point)."""
    for text, res, soft, hard in rlimits:
        try:
            resource.setrlimit(res, (soft, hard))
        except (OSError, ValueError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise SandboxError(
                f"cannot set --ulimit {text}: {why}",
                hint="lower it: rootless, no hard limit can exceed the builder's own "
                "(`ulimit -H`); as root, nofile cannot exceed /proc/sys/fs/nr_open",
            ) from e


def _drop_capabilities(cap_last: int) -> None:
    for cap in range(cap_last + 1):
        if cap not in DEFAULT_CAPS:
            linux.prctl(linux.PR_CAPBSET_DROP, cap)


def _become_user(plan: ChildPlan) -> None:
    try:
        if plan.setgroups:
            os.setgroups(list(plan.groups))
        os.setresgid(plan.gid, plan.gid, plan.gid)
        os.setresuid(plan.uid, plan.uid, plan.uid)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        raise SandboxError(
            f"user {plan.uid}:{plan.gid} is not mapped in the rootless user namespace",
            hint="give this user a range in /etc/subuid and /etc/subgid and install "
            "newuidmap/newgidmap (Debian package uidmap)",
        ) from e


def _exec(plan: ChildPlan) -> NoReturn:
    env = dict(item.partition("=")[::2] for item in plan.env)
    try:
        os.execvpe(plan.argv[0], list(plan.argv), env)
    except OSError as e:
        missing = e.errno in (errno.ENOENT, errno.ENOTDIR)
        why = "executable file not found in $PATH" if missing else (e.strerror or str(e))
        os.write(2, f"exec {plan.argv[0]!r}: {why}\n".encode())
        os._exit(127 if missing else 126)
    os._exit(SETUP_FAILED)  # not reached: execvpe returns only by raising
