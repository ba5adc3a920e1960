"""RUN's network modes for real, as root and rootless: `default` (a namespace of its own behind
slirp4netns), `none` and `host`, with /etc/hosts and /etc/resolv.conf as each mode makes them.

Outbound access is checked against a peer this test makes: an HTTP server inside a network
namespace of its own, joined to the host by a veth pair (no address outside the machine is
contacted). The host's loopback is checked with a server on 127.0.0.1. Debian's static busybox
`wget -T` crashes, so a bounded wait is `timeout N wget`.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from layerbuild.sandbox.netfiles import HostEntry
from tests.integration.sandbox.conftest import Sandbox

pytestmark = [pytest.mark.root]


@dataclass(frozen=True)
class Peer:
    address: str
    port: int


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """An HTTP server at 10.231.N.2:8000 in a network namespace of its own, serving /hello."""
    n = os.getpid() % 200 + 20
    ns, host_end, peer_end = f"lbpeer{n}", f"lbh{n}", f"lbp{n}"
    www = tmp_path_factory.mktemp("www")
    (www / "hello").write_text("hello from the peer\n")
    os.chmod(www, 0o755)
    _ip("netns", "add", ns)
    server = None
    try:
        _ip("link", "add", host_end, "type", "veth", "peer", "name", peer_end)
        _ip("link", "set", peer_end, "netns", ns)
        _ip("addr", "add", f"10.231.{n}.1/24", "dev", host_end)
        _ip("link", "set", host_end, "up")
        _ip("-n", ns, "addr", "add", f"10.231.{n}.2/24", "dev", peer_end)
        _ip("-n", ns, "link", "set", peer_end, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-u", "-m", "http.server",
             "--bind", f"10.231.{n}.2", "--directory", str(www), "8000"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert server.stdout is not None
        assert b"Serving HTTP" in server.stdout.readline()  # listening from here on
        yield Peer(f"10.231.{n}.2", 8000)
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", host_end], capture_output=True, check=False)
        _ip("netns", "del", ns)


@pytest.fixture(scope="module")
def host_loopback_server() -> Iterator[int]:
    """An HTTP server on the host's 127.0.0.1 (only the host itself should reach it)."""

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"hello from the host's loopback\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_default_network_reaches_out_through_its_own_interface(
    sandbox: Sandbox, peer: Peer
) -> None:
    r = sandbox.run(
        f"wget -q -O- http://{peer.address}:{peer.port}/hello; "
        "cat /etc/resolv.conf; tail -n +3 /proc/net/dev | cut -d: -f1",
        network="default",
    )
    assert r.code == 0, r.text
    lines = r.text.splitlines()
    assert lines[0] == "hello from the peer"
    assert "nameserver 10.0.2.3" in lines
    assert sorted(x.strip() for x in lines[-2:]) == ["lo", "tap0"]
    # none of the sandbox's /etc files reaches the layer
    assert not [p for _, p in r.paths if p.startswith("etc")]


def test_no_network_has_loopback_only_and_cannot_reach_the_peer(
    sandbox: Sandbox, peer: Peer
) -> None:
    r = sandbox.run(
        f"timeout 3 wget -q -O- http://{peer.address}:{peer.port}/hello; echo status=$?; "
        "tail -n +3 /proc/net/dev | cut -d: -f1",
        network="none",
    )
    lines = r.text.splitlines()
    assert "status=1" in lines
    assert [x.strip() for x in lines[lines.index("status=1") + 1 :]] == ["lo"]


def test_the_hosts_loopback_is_out_of_reach_unless_asked_for(
    sandbox: Sandbox, host_loopback_server: int
) -> None:
    port = host_loopback_server
    r = sandbox.run(
        f"timeout 5 wget -q -O- http://10.0.2.2:{port}/; echo status=$?", network="default"
    )
    assert "status=1" in r.text and "hello" not in r.text

    gateway = (HostEntry("host.docker.internal", "host-gateway"), HostEntry("db", "10.9.9.9"))
    r = sandbox.run(
        f"wget -q -O- http://host.docker.internal:{port}/; grep -E 'docker|db' /etc/hosts",
        network="default",
        add_hosts=gateway,
    )
    assert r.code == 0, r.text
    assert r.text.splitlines() == [
        "hello from the host's loopback",
        "10.0.2.2\thost.docker.internal",
        "10.9.9.9\tdb",
    ]


def test_the_network_helper_is_gone_after_the_step(sandbox: Sandbox) -> None:
    before = _slirp_processes()
    r = sandbox.run("true", network="default")
    assert r.code == 0
    assert _slirp_processes() - before == set()


def _slirp_processes() -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm == "slirp4netns":
                found.add(int(entry.name))
    return found
