"""host_error: which OSErrors are the machine's doing, and what their message and hint say."""

from __future__ import annotations

import errno

import pytest

from layerbuild.errors import HostError
from layerbuild.hosterrors import at_path, host_error, local_write_error, os_hint

STORE = "/var/lib/store"


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (errno.ENOSPC, "free space on that file system"),
        (errno.EDQUOT, "quota"),
        (errno.EACCES, "change its owner or mode"),
        (errno.EPERM, "change its owner or mode"),
        (errno.EROFS, "remount it read-write"),
        (errno.EIO, "kernel log"),
        (errno.EMFILE, "ulimit -n"),
        (errno.ENFILE, "fs.file-max"),
        (errno.ENOMEM, "out of memory"),
    ],
)
def test_each_errno_has_its_hint(code: int, hint: str) -> None:
    err = host_error(OSError(code, "why", "/ctx/file"))
    assert isinstance(err, HostError)
    assert err.exit_code == 9 and err.errno == code and err.path == "/ctx/file"
    assert str(err).startswith("why: /ctx/file\nhint: ") and hint in str(err)


def test_other_errnos_are_bugs() -> None:
    """An errno the machine does not cause by itself keeps its traceback."""
    assert host_error(OSError(errno.ENOENT, "gone", "/x")) is None
    assert host_error(OSError(errno.EXDEV, "cross-device", "/x", None, "/y")) is None
    assert os_hint(OSError(errno.ENOENT, "gone")) is None


def test_a_path_in_the_store_names_the_store() -> None:
    full = OSError(errno.ENOSPC, "No space left on device", f"{STORE}/ingest/1.tmp")
    err = host_error(full, store=STORE)
    assert err is not None
    assert err.message == (
        f"No space left on device: {STORE}/ingest/1.tmp (in the store at {STORE})"
    )
    outside = host_error(OSError(errno.ENOSPC, "No space", "/var/lib/store2/x"), store=STORE)
    assert outside is not None and "in the store" not in outside.message


def test_a_store_the_user_may_not_write_says_to_use_another() -> None:
    denied = OSError(errno.EACCES, "Permission denied", f"{STORE}/locks/store.lock")
    err = host_error(denied, store=STORE)
    assert err is not None and err.hint is not None
    assert err.hint.startswith("the store must be writable") and "--root" in err.hint
    context = host_error(OSError(errno.EACCES, "Permission denied", "/ctx/a"), store=STORE)
    assert context is not None and context.hint is not None and ".dockerignore" in context.hint


def test_rename_names_both_paths() -> None:
    err = host_error(OSError(errno.EROFS, "Read-only file system", "/a", None, "/b"))
    assert err is not None and err.message == "Read-only file system: /a -> /b"


def test_without_a_path() -> None:
    """A write to an open file names no file: the store is named instead; a process-wide
    limit needs no path at all."""
    full = host_error(OSError(errno.ENOSPC, "No space left on device"), store=STORE)
    assert full is not None and full.path is None
    assert full.message == (
        f"No space left on device (writing a file already open; the store is at {STORE})"
    )
    limit = host_error(OSError(errno.EMFILE, "Too many open files"), store=STORE)
    assert limit is not None and limit.message == "Too many open files"


def test_step_prefixes_the_message() -> None:
    err = host_error(OSError(errno.EIO, "Input/output error", "/a"))
    assert err is not None
    err.step = "Dockerfile:3 (stage app) COPY a /"
    assert str(err).startswith("Dockerfile:3 (stage app) COPY a /: Input/output error: /a\n")


def test_at_path_keeps_the_kind_of_error() -> None:
    named = at_path(PermissionError(errno.EACCES, "Permission denied"), "/store/x")
    assert isinstance(named, PermissionError)
    assert (named.errno, named.filename) == (errno.EACCES, "/store/x")


def test_a_read_only_store_says_so_and_what_still_works() -> None:
    ro = OSError(errno.EROFS, "Read-only file system", f"{STORE}/locks/refs.lock")
    err = host_error(ro, store=STORE)
    assert err is not None and err.hint is not None
    assert err.message.endswith(f"(in the store at {STORE}); the store is read-only")
    assert err.hint.startswith("that file system is mounted read-only: remount it read-write")
    assert "images, inspect, history, save, push and run" in err.hint
    elsewhere = host_error(OSError(errno.EROFS, "Read-only file system", "/out/x"), store=STORE)
    assert elsewhere is not None and "the store is read-only" not in elsewhere.message


def test_a_local_write_error_is_always_a_host_error() -> None:
    """What a download's sink raises is never left an OSError (a network retry would take it
    for a dropped connection), whatever its errno."""
    full = local_write_error(OSError(errno.ENOSPC, "No space left on device", "/s/ingest/1"))
    assert full.exit_code == 9 and "free space" in str(full)
    odd = local_write_error(OSError(errno.EBADF, "Bad file descriptor"))
    assert isinstance(odd, HostError) and odd.errno == errno.EBADF
    assert str(odd).startswith("Bad file descriptor (writing a local file)\nhint: a local write")
