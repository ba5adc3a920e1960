"""OSErrors of the machine's making (no space, permission denied, a read-only or failing disk,
too many open files) as a HostError that names the path and says what to do.

Apart from errors.py, which holds the exception classes themselves: this is the mapping from an
errno and a path to a message and a hint, used where effects happen (the store, the context
reader, downloads) and by the CLI for whatever gets that far. Pure, like errors.py: it looks at
an OSError and never at the file system.
"""

from __future__ import annotations

import errno
import posixpath

from layerbuild.errors import HostError

_MOVE = "use a store on another file system with --root or LAYERBUILD_ROOT"
_HINTS = {
    errno.ENOSPC: "free space on that file system (`df -h` shows it; `layerbuild prune` removes "
    f"unused images and build cache), or {_MOVE}",
    errno.EDQUOT: "your disk quota on that file system is used up: free some of it, or " + _MOVE,
    errno.EACCES: "the user running layerbuild may not access it: change its owner or mode "
    "(`ls -ld` shows them), or leave a file of the build context out with .dockerignore",
    errno.EROFS: "that file system is mounted read-only: remount it read-write, or " + _MOVE,
    errno.EIO: "the device reported an I/O error: check the disk and the kernel log (dmesg), "
    "then run the command again (blobs are verified when read, so damaged ones are found)",
    errno.EMFILE: "this process reached its limit of open files: raise it (`ulimit -n 65536` "
    "in the shell that runs layerbuild) and run the command again",
    errno.ENFILE: "the system ran out of open files: close programs or raise the kernel's "
    "limit (sysctl fs.file-max), then run the command again",
    errno.ENOMEM: "the system is out of memory: free some, then run the command again",
}
_HINTS[errno.EPERM] = _HINTS[errno.EACCES]
_STORE_DENIED = (
    "the store must be writable by the user running layerbuild: change its owner (`ls -ld` "
    "it), or use a store you own with --root or LAYERBUILD_ROOT"
)
_STORE_READ_ONLY = (
    "that file system is mounted read-only: remount it read-write, or use a writable store "
    "with --root or LAYERBUILD_ROOT (images, inspect, history, save, push and run of an "
    "unpacked image work on a read-only store)"
)
# errnos that name no file by nature (a pipe, a fork, a socket): no path to look for
_PROCESS_WIDE = (errno.EMFILE, errno.ENFILE, errno.ENOMEM)


def os_hint(exc: OSError) -> str | None:
    """What to do about an OSError of the machine's making; None for other errnos."""
    return _HINTS.get(exc.errno or 0)


def host_error(exc: OSError, *, store: str | None = None) -> HostError | None:
    """The HostError an OSError of the machine's making (errno in _HINTS) means; None for any
    other errno, which is a bug of ours and keeps its traceback. `store`: the store's root
    (absolute), named beside a path in it, or alone when the failed call named no file (a
    write to a file already open)."""
    hint = os_hint(exc)
    if hint is None:
        return None
    code = exc.errno or 0
    what = exc.strerror or f"errno {code}"
    path = _text(exc.filename)
    if path is None:
        message = what
        if store is not None and code not in _PROCESS_WIDE:
            message += f" (writing a file already open; the store is at {store})"
        return HostError(message, errno_code=code, hint=hint)
    message = f"{what}: {path}"
    if exc.filename2 is not None:
        message += f" -> {_text(exc.filename2)}"
    if store is not None and _below(path, store):
        message += f" (in the store at {store})"
        if code in (errno.EACCES, errno.EPERM):
            hint = _STORE_DENIED
        elif code == errno.EROFS:
            message += "; the store is read-only"
            hint = _STORE_READ_ONLY
    return HostError(message, path=path, errno_code=code, hint=hint)


def local_write_error(exc: OSError, *, store: str | None = None) -> HostError:
    """A write to a local file (a blob being downloaded into the store) failed: a HostError,
    never an OSError, so that no network retry policy takes it for a dropped connection. An
    errno outside host_error's list still becomes one, with a hint of its own."""
    known = host_error(exc, store=store)
    if known is not None:
        return known
    path = _text(exc.filename)
    what = exc.strerror or f"errno {exc.errno}"
    return HostError(
        f"{what}: {path}" if path else f"{what} (writing a local file)",
        path=path,
        errno_code=exc.errno or 0,
        hint="a local write failed, not the network: check that file system, then run the "
        "command again",
    )


def _text(filename: object) -> str | None:
    if filename is None:
        return None
    if isinstance(filename, bytes):
        return filename.decode("utf-8", "surrogateescape")  # as os.fsdecode does on Linux
    return str(filename)


def _below(path: str, root: str) -> bool:
    root = posixpath.normpath(root)
    return posixpath.normpath(path).startswith(root.rstrip("/") + "/")


def at_path(exc: OSError, path: object) -> OSError:
    """`exc` naming `path` (a str or Path): for calls on a file descriptor, whose errors name
    no file."""
    return OSError(exc.errno, exc.strerror, str(path))
