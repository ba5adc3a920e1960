"""SSH agent forwarding for RUN --mount=type=ssh (`--ssh ID=SOCKET` on build).

BuildKit forwards an agent into a step through a socket of its own that relays each
connection to the client's agent; the socket has the owner and mode the mount asks for, and
neither it nor the agent's keys reach the layer or the cache key. `AgentForward` does the same
with a listening socket in the build's scratch directory, bind-mounted at the mount's target,
and a thread that relays bytes to the agent until the step ends.

`--ssh` takes ``default`` or ``ID`` (the agent of ``$SSH_AUTH_SOCK``) or ``ID=PATH``. BuildKit
also accepts key files there and runs an agent of its own over them; layerbuild accepts agent
sockets only and says how to load keys into an agent.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import stat
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from layerbuild.errors import BuildError

_CHUNK = 65536


def parse_ssh(values: Sequence[str], environ: Mapping[str, str]) -> dict[str, Path]:
    """`--ssh` values → id → agent socket; BuildError when one is not an agent socket."""
    out: dict[str, Path] = {}
    for value in values:
        ident, sep, paths = value.partition("=")
        ident = ident.strip()
        if not ident:
            raise BuildError(f"--ssh {value!r} has no id", hint="write --ssh default or ID=SOCKET")
        if not sep:
            agent = environ.get("SSH_AUTH_SOCK", "")
            if not agent:
                raise BuildError(
                    f"--ssh {ident}: SSH_AUTH_SOCK is not set",
                    hint="start an agent (eval $(ssh-agent); ssh-add) or give --ssh ID=SOCKET",
                )
            paths = agent
        parts = [p for p in paths.split(",") if p]
        if len(parts) != 1 or not _is_socket(Path(parts[0])):
            raise BuildError(
                f"--ssh {value}: {', '.join(parts) or 'nothing'} is not an SSH agent socket "
                "(key files are not supported)",
                hint="load the keys into an agent and give its socket: eval $(ssh-agent); "
                "ssh-add KEY; --ssh default",
            )
        out[ident] = Path(parts[0])
    return out


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


class AgentForward:
    """A listening socket at `path` relaying every connection to the agent at `agent`.

    Closing it stops the relay thread, closes every connection and removes the socket."""

    def __init__(self, path: Path, agent: Path) -> None:
        self.path = path
        self.agent = agent
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(16)
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = os.pipe()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._peers: dict[socket.socket, socket.socket] = {}
        self._thread = threading.Thread(target=self._loop, name="ssh-forward", daemon=True)
        self._thread.start()

    def close(self) -> None:
        os.write(self._wake_w, b"x")
        self._thread.join()
        for sock in list(self._peers):
            sock.close()
        self._selector.close()
        self._listener.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _loop(self) -> None:
        while True:
            for key, _ in self._selector.select():
                obj = key.fileobj
                if obj == self._wake_r:
                    return
                if obj is self._listener:
                    self._accept()
                elif isinstance(obj, socket.socket):
                    self._relay(obj)

    def _accept(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            agent.connect(str(self.agent))
        except OSError:
            agent.close()
            conn.close()  # the client sees the agent go away, as with a dead agent
            return
        for a, b in ((conn, agent), (agent, conn)):
            a.setblocking(True)
            self._peers[a] = b
            self._selector.register(a, selectors.EVENT_READ, None)

    def _relay(self, sock: socket.socket) -> None:
        peer = self._peers.get(sock)
        if peer is None:
            return
        try:
            data = sock.recv(_CHUNK)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        for s in (sock, peer):  # one side closed: end the pair
            self._selector.unregister(s)
            self._peers.pop(s, None)
            s.close()
