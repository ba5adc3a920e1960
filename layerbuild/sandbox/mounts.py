"""Mounts as data (containerd's `Mount`): built by pure functions, performed by `apply_mount`.

Everything above `apply_mount` is pure and unit-tested without root. `apply_mount` is called only
by the sandbox's init process (runner.py), inside its private mount namespace, before
pivot_root: so nothing here can ever leave a mount behind on the host.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from layerbuild.errors import SandboxError
from layerbuild.sandbox import linux
from layerbuild.sandbox.securejoin import secure_join

# The mount data of mount(2) is copied into a single page; one byte is the terminating NUL.
MOUNT_DATA_LIMIT = 4095
# OVL_MAX_STACK in fs/overlayfs: more lower layers than this and the mount fails with EINVAL.
OVERLAY_MAX_LOWERS = 500
# Overlay features we turn off when the kernel knows them: redirect_dir and metacopy write
# upper entries (redirect xattrs, metadata-only copies) that cannot be read back as a layer,
# and the inode index would tie a snapshot to the filesystem it was made on.
OVERLAY_OFF = ("index", "redirect_dir", "metacopy")

DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")

_FLAGS = {
    "ro": linux.MS_RDONLY,
    "nosuid": linux.MS_NOSUID,
    "nodev": linux.MS_NODEV,
    "noexec": linux.MS_NOEXEC,
    "strictatime": linux.MS_STRICTATIME,
    "bind": linux.MS_BIND,
    "rbind": linux.MS_BIND | linux.MS_REC,
}
_IGNORED = frozenset({"rw", "defaults"})


@dataclass(frozen=True, slots=True)
class Mount:
    """One mount(2) call: `target` is a path inside the container; options as in fstab."""

    type: str
    source: str
    target: str
    options: tuple[str, ...] = ()

    @property
    def is_bind(self) -> bool:
        return self.type == "bind" or "bind" in self.options or "rbind" in self.options

    @property
    def readonly(self) -> bool:
        return "ro" in self.options


def overlay_options(
    lowerdirs: Sequence[str],
    upper: str,
    work: str,
    *,
    rootless: bool,
    features: Iterable[str] = OVERLAY_OFF,
) -> str:
    """The overlay mount data for `lowerdirs` (top-most first) under `upper`/`work`.

    `features` names the optional overlay parameters the running kernel knows (see
    `kernel_overlay_features`); only those are switched off explicitly. Rootless mounts need
    `userxattr`: an unprivileged mounter cannot use trusted.* xattrs (moby/moby#42662).
    """
    if not lowerdirs:
        raise ValueError("overlay needs at least one lower directory")
    if len(lowerdirs) > OVERLAY_MAX_LOWERS:
        raise SandboxError(
            f"{len(lowerdirs)} lower layers exceed overlayfs' limit of {OVERLAY_MAX_LOWERS}",
            hint="flatten the lowest layers into one snapshot (LayerSnapshots.lowerdirs)",
        )
    for d in (*lowerdirs, upper, work):
        if any(c in d for c in ":,\n") or not d:
            raise SandboxError(
                f"overlay directory {d!r} contains ':' or ',', which mount options cannot quote",
                hint="move the store to a path without ':' or ','",
            )
    known = set(features)
    parts = [f"lowerdir={':'.join(lowerdirs)}", f"upperdir={upper}", f"workdir={work}"]
    for name in OVERLAY_OFF:
        if name in known:
            # with userxattr the kernel takes only "nofollow" (which also creates no redirect)
            value = "nofollow" if rootless and name == "redirect_dir" else "off"
            parts.append(f"{name}={value}")
    if rootless:
        parts.append("userxattr")
    data = ",".join(parts)
    if len(data.encode()) > MOUNT_DATA_LIMIT:
        raise SandboxError(
            f"overlay mount options are {len(data.encode())} bytes, more than one page",
            hint="use shorter lower directory names or flatten the lowest layers",
        )
    return data


def kernel_overlay_features(params: str = "/sys/module/overlay/parameters") -> frozenset[str]:
    """The overlay parameters this kernel knows; all of OVERLAY_OFF if it cannot be read
    (overlay built into a kernel without sysfs module entries knows them since 4.19)."""
    try:
        names = set(os.listdir(params))
    except OSError:
        return frozenset(OVERLAY_OFF)
    return frozenset(n for n in OVERLAY_OFF if n in names)


def parse_options(options: Iterable[str]) -> tuple[int, str]:
    """fstab-style options → (mount flags, data string for the filesystem)."""
    flags = 0
    data: list[str] = []
    for opt in options:
        if opt in _FLAGS:
            flags |= _FLAGS[opt]
        elif opt not in _IGNORED:
            data.append(opt)
    return flags, ",".join(data)


def default_mounts(
    *, rootless: bool, own_netns: bool, shm_size: int | None = None
) -> tuple[Mount, ...]:
    """The mounts every RUN gets (Docker's defaults, minus cgroups and mqueue); /dev/shm is
    `shm_size` bytes (--shm-size), else docker's 64 MiB.

    /sys is a fresh read-only sysfs only when the step has its own network namespace (the
    kernel refuses sysfs otherwise in a user namespace); runner.py falls back to a read-only
    bind of the host's /sys when sysfs is refused.
    """
    pts = ["newinstance", "ptmxmode=0666", "mode=0620"]
    if not rootless:
        pts.append("gid=5")  # tty group; may be unmapped in a user namespace
    shm = f"size={shm_size}" if shm_size else "size=65536k"
    mounts = [
        Mount("proc", "proc", "/proc", ("nosuid", "nodev", "noexec")),
        Mount("tmpfs", "tmpfs", "/dev", ("nosuid", "strictatime", "mode=755", "size=65536k")),
        *(Mount("bind", f"/dev/{n}", f"/dev/{n}", ("bind",)) for n in DEV_NODES),
        Mount("devpts", "devpts", "/dev/pts", ("nosuid", "noexec", *pts)),
        Mount("tmpfs", "shm", "/dev/shm", ("nosuid", "nodev", "noexec", "mode=1777", shm)),
    ]
    if own_netns:
        mounts.append(Mount("sysfs", "sysfs", "/sys", ("ro", "nosuid", "nodev", "noexec")))
    else:
        mounts.append(Mount("bind", "/sys", "/sys", ("rbind", "ro")))
    return tuple(mounts)


@dataclass(frozen=True, slots=True)
class Stub:
    """Mount points `apply_mount` had to create (container paths relative to /, top first);
    `parent` is the directory they were created in and `parent_mtime_ns` its mtime before."""

    paths: tuple[str, ...]
    parent: str
    parent_mtime_ns: int


def _make_stub(rootfs: str, target: str, *, is_file: bool) -> Stub | None:
    """Create the missing parts of `target` (a host path under rootfs)."""
    missing: list[str] = []
    path = target
    while not os.path.lexists(path) and path != rootfs:
        missing.append(path)
        path = os.path.dirname(path)
    if not missing:
        return None
    before = os.lstat(path).st_mtime_ns
    for p in reversed(missing):
        if p == target and is_file:
            os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
        else:
            os.mkdir(p, 0o755)
    return Stub(
        tuple(os.path.relpath(p, rootfs) for p in reversed(missing)),
        os.path.relpath(path, rootfs) if path != rootfs else "",
        before,
    )


def _locked_flags(target: str) -> int:
    """Flags a read-only remount of a bind must keep: in a user namespace the kernel refuses
    to clear nosuid/nodev/noexec/atime flags that the source mount has (runc does the same)."""
    pairs = (
        (os.ST_NOSUID, linux.MS_NOSUID),
        (os.ST_NODEV, linux.MS_NODEV),
        (os.ST_NOEXEC, linux.MS_NOEXEC),
        (os.ST_NOATIME, 1024),
        (os.ST_NODIRATIME, 2048),
        (os.ST_RELATIME, 1 << 21),
    )
    f_flag = os.statvfs(target).f_flag
    return sum(ms for st, ms in pairs if f_flag & st)


def _prepare_target(mount: Mount, rootfs: str) -> tuple[str, Stub | None]:
    target = secure_join(rootfs, mount.target)
    is_file = mount.is_bind and not os.path.isdir(mount.source)
    created = _make_stub(rootfs, target, is_file=is_file)
    st = os.lstat(target)
    if is_file == stat.S_ISDIR(st.st_mode):
        raise SandboxError(
            f"cannot mount {mount.source} on {mount.target}: one is a directory, the other not",
            hint="change the mount target, or the image path it points at",
        )
    return target, created


def _mount_at(mount: Mount, target: str) -> None:
    flags, data = parse_options(mount.options)
    if not mount.is_bind:
        linux.mount(mount.source, target, mount.type, flags, data or None)
        return
    linux.mount(mount.source, target, None, flags & (linux.MS_BIND | linux.MS_REC))
    extra = flags & ~(linux.MS_BIND | linux.MS_REC)
    if extra:
        remount = linux.MS_BIND | linux.MS_REMOUNT | extra | _locked_flags(target)
        linux.mount(None, target, None, remount)


def apply_mount(mount: Mount, rootfs: str, fallback: Mount | None = None) -> Stub | None:
    """Perform `mount` under `rootfs` (a host path), or `fallback` (same target) when the kernel
    refuses the first form; returns the mount points it created, so they can be taken out of
    the layer afterwards."""
    target, created = _prepare_target(mount, rootfs)
    try:
        _mount_at(mount, target)
    except OSError as e:
        if fallback is None or e.errno not in (errno.EPERM, errno.EACCES, errno.EINVAL):
            raise
        _mount_at(fallback, target)
    return created
