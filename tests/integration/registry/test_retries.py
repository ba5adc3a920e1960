"""Retries with backoff on 5xx and 429, and clear errors once they run out (loopback server)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from layerbuild.errors import RegistryUnavailable
from layerbuild.registry.client import RegistryClient
from layerbuild.registry.options import RegistryOptions

pytestmark = [pytest.mark.registry]
FAST = RegistryOptions(retries=3, backoff=0.01)


class Flaky:
    """Answers `statuses` in turn to GET /v2/, then 200."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.seen: list[int] = []
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                status = flaky.statuses.pop(0) if flaky.statuses else 200
                flaky.seen.append(status)
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def flaky() -> Iterator[type[Flaky]]:
    made: list[Flaky] = []

    class Make(Flaky):
        def __init__(self, statuses: list[int]) -> None:
            super().__init__(statuses)
            made.append(self)

    yield Make
    for f in made:
        f.server.shutdown()
        f.server.server_close()


def test_5xx_and_429_are_retried(flaky: type[Flaky]) -> None:
    server = flaky([503, 429, 502])
    RegistryClient(server.host, FAST).ping()
    assert server.seen == [503, 429, 502, 200]


def test_persistent_5xx_is_a_clear_unavailable_error(flaky: type[Flaky]) -> None:
    server = flaky([500] * 10)
    with pytest.raises(RegistryUnavailable, match="answered 500") as e:
        RegistryClient(server.host, FAST).ping()
    assert e.value.status == 500 and e.value.hint
    assert server.seen == [500] * 4


def test_403_is_not_retried(flaky: type[Flaky]) -> None:
    server = flaky([403, 200])
    with pytest.raises(Exception, match="access denied for anonymous access") as e:
        RegistryClient(server.host, FAST).ping()
    assert getattr(e.value, "status", None) == 403
    assert server.seen == [403]


def test_unreachable_registry_names_the_host_and_the_fix() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(RegistryUnavailable, match=f"cannot reach registry 127.0.0.1:{port}"):
        RegistryClient(f"127.0.0.1:{port}", FAST).ping()
