"""Typed ctypes wrappers for the Linux syscalls Python 3.11 lacks (unshare, mount, pivot_root).

libc is loaded once with ``use_errno=True`` so a failure raises ``OSError(errno, what, path)``
naming the call and its path, like the os module does. Every wrapper takes an optional ``libc``
(pyroute2's seam), so a test can pass a library of its own; nothing here keeps other state.
These calls only ever run in the sandbox's forked child: see runner.py for the post-fork rules.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import functools
import os
import platform
import socket
import struct

# <linux/sched.h>
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# <linux/mount.h>
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_STRICTATIME = 1 << 24
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 0x2

# <linux/prctl.h>
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24

# pivot_root has no libc wrapper in glibc; its number differs per architecture.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41}


@functools.cache
def libc() -> ctypes.CDLL:
    """The C library, loaded once with errno capture."""
    name = ctypes.util.find_library("c") or "libc.so.6"
    return ctypes.CDLL(name, use_errno=True)


def _check(result: int, what: str, path: str | None = None) -> None:
    if result == -1:
        err = ctypes.get_errno()
        if path is None:
            raise OSError(err, f"{what}: {os.strerror(err)}")
        raise OSError(err, f"{what}: {os.strerror(err)}", path)


def _bytes(value: str | os.PathLike[str] | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int, *, lib: ctypes.CDLL | None = None) -> None:
    """unshare(2): move the calling process into new namespaces."""
    lib = lib or libc()
    _check(lib.unshare(ctypes.c_int(flags)), "unshare")


def mount(
    source: str | os.PathLike[str] | None,
    target: str | os.PathLike[str],
    fstype: str | None,
    flags: int = 0,
    data: str | None = None,
    *,
    lib: ctypes.CDLL | None = None,
) -> None:
    """mount(2); `data` is the filesystem's option string (e.g. overlay's lowerdir=...)."""
    lib = lib or libc()
    result = lib.mount(
        _bytes(source),
        _bytes(target),
        None if fstype is None else fstype.encode(),
        ctypes.c_ulong(flags),
        None if data is None else data.encode(),
    )
    _check(result, f"mount {fstype or 'bind'} {source or ''}".rstrip(), os.fsdecode(target))


def umount2(
    target: str | os.PathLike[str], flags: int = 0, *, lib: ctypes.CDLL | None = None
) -> None:
    """umount2(2)."""
    lib = lib or libc()
    _check(lib.umount2(_bytes(target), ctypes.c_int(flags)), "umount2", os.fsdecode(target))


def pivot_root(
    new_root: str | os.PathLike[str],
    put_old: str | os.PathLike[str],
    *,
    lib: ctypes.CDLL | None = None,
) -> None:
    """pivot_root(2) through syscall(2) (glibc has no wrapper)."""
    lib = lib or libc()
    machine = platform.machine()
    if machine not in _SYS_PIVOT_ROOT:
        raise OSError(0, f"pivot_root: unsupported architecture {machine}")
    number = ctypes.c_long(_SYS_PIVOT_ROOT[machine])
    result = lib.syscall(number, _bytes(new_root), _bytes(put_old))
    _check(result, "pivot_root", os.fsdecode(new_root))


def prctl(option: int, arg: int, *, lib: ctypes.CDLL | None = None) -> None:
    """prctl(2) with one argument (PR_SET_PDEATHSIG, PR_CAPBSET_DROP)."""
    lib = lib or libc()
    zero = ctypes.c_ulong(0)
    _check(lib.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), zero, zero, zero), "prctl")


def sethostname(name: str, *, lib: ctypes.CDLL | None = None) -> None:
    """sethostname(2) in the current UTS namespace."""
    lib = lib or libc()
    raw = name.encode()
    _check(lib.sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname")


def cap_last_cap() -> int:
    """The highest capability number this kernel knows (40 on 6.x)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as f:
            return int(f.read().strip())
    except OSError:
        return 40


_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = struct.Struct("16sh22x")  # struct ifreq: name, then the flags member of the union


def loopback_up() -> None:
    """Bring `lo` up in a fresh network namespace: it starts down, and a RUN without network
    still expects 127.0.0.1 to work (runc and BuildKit bring it up too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        raw = fcntl.ioctl(s, _SIOCGIFFLAGS, _IFREQ.pack(b"lo", 0))
        flags = _IFREQ.unpack(raw)[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, _IFREQ.pack(b"lo", flags | _IFF_UP))
