"""--ssh parsing and the agent relay socket, against a stand-in agent (an echo server)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from layerbuild.engine.sshforward import AgentForward, parse_ssh
from layerbuild.errors import BuildError


def _echo_agent(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(1024):
                    conn.sendall(b"agent:" + data)

    threading.Thread(target=serve, daemon=True).start()
    return server


def test_parse_ssh_takes_sockets_and_ssh_auth_sock(tmp_path: Path) -> None:
    agent = tmp_path / "agent"
    server = _echo_agent(agent)
    try:
        assert parse_ssh(["default", f"gh={agent}"], {"SSH_AUTH_SOCK": str(agent)}) == {
            "default": agent,
            "gh": agent,
        }
        with pytest.raises(BuildError, match="SSH_AUTH_SOCK is not set"):
            parse_ssh(["default"], {})
        key = tmp_path / "id_ed25519"
        key.write_text("not a socket")
        with pytest.raises(BuildError, match="key files are not supported"):
            parse_ssh([f"default={key}"], {})
    finally:
        server.close()


def test_forward_relays_each_connection_and_cleans_up(tmp_path: Path) -> None:
    server = _echo_agent(tmp_path / "agent")
    forward = AgentForward(tmp_path / "fwd", tmp_path / "agent")
    try:
        for word in (b"one", b"two"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(str(tmp_path / "fwd"))
                client.sendall(word)
                assert client.recv(1024) == b"agent:" + word
    finally:
        forward.close()
        server.close()
    assert not (tmp_path / "fwd").exists()
