"""The build's side of the context watcher (context/watcher.py, `layerbuild watch`).

A build asks the watcher of its context for the listing, and uses it only when the watcher
answers that nothing under the context changed since it walked it, with the same
`.dockerignore` rules; anything else (no watcher, a watcher of another user, a late or broken
answer, "stale") leaves the build to its own walkers. Nothing is imported and nothing is
connected to unless a watcher's socket is there.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import stat
from typing import TYPE_CHECKING

from layerbuild.context.listing import Share

if TYPE_CHECKING:
    import socket

SOCKET_DIR = "/run/layerbuild/watch"  # root's: a watcher serves builds of its own user only
PROTOCOL = 1
TIMEOUT_S = 0.5  # an answer that takes longer is not waited for: the walkers are running


def socket_path(root: str, directory: str = SOCKET_DIR) -> str:
    """The socket of the watcher of the context at `root` (a real path)."""
    name = hashlib.sha256(os.fsencode(root)).hexdigest()[:32]
    return os.path.join(directory, f"{name}.sock")


def request(root: str, patterns: list[tuple[str, bool]]) -> bytes:
    return marshal.dumps((PROTOCOL, root, patterns))


def ask(
    root: str, patterns: list[tuple[str, bool]], directory: str = SOCKET_DIR
) -> list[Share] | None:
    """The listing of `root` walked with `patterns` as the watcher holds it, in unit order;
    None unless a watcher of this user vouches that nothing changed since it walked."""
    path = socket_path(root, directory)
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.geteuid():
        return None
    import socket
    import struct

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as conn:
            conn.settimeout(TIMEOUT_S)
            conn.connect(path)
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            _pid, uid, _gid = struct.unpack("3i", creds)
            if uid != os.geteuid():
                return None
            conn.sendall(request(root, patterns))
            conn.shutdown(socket.SHUT_WR)
            answer = _read_all(conn)
    except OSError:
        return None
    return parse_answer(answer)


def parse_answer(answer: bytes) -> list[Share] | None:
    """The shares of a "clean" answer; None for "stale" or anything malformed."""
    try:
        reply = marshal.loads(answer)
    except (EOFError, ValueError, TypeError):
        return None
    if not (isinstance(reply, tuple) and len(reply) == 2 and reply[0] == "clean"):
        return None
    shares = reply[1]
    if not isinstance(shares, list) or not all(_is_share(s) for s in shares):
        return None
    return shares


def _is_share(share: object) -> bool:
    return (
        isinstance(share, tuple)
        and len(share) == 5
        and isinstance(share[0], int)
        and isinstance(share[1], int)
        and all(isinstance(part, bytes) for part in share[2:])
    )


def _read_all(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
