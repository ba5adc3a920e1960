"""registry/download.py against real servers on 127.0.0.1: redirects, proxies from the
environment (plain HTTP through a forward proxy, HTTPS through a CONNECT tunnel)."""

from __future__ import annotations

import base64
import io
import select
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from layerbuild.errors import FetchError
from layerbuild.registry.download import download, parse_proxy
from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.transport import Proxy

HELLO = b"hello through whatever is in between\n"
FAST = RegistryOptions(retries=1, backoff=0.01, timeout=10)
_PROXY_VARS = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


class _Sink:
    def __init__(self) -> None:
        self.data = io.BytesIO()

    def write(self, data: bytes, /) -> None:
        self.data.write(data)

    def reset(self) -> None:
        self.data = io.BytesIO()


class _Origin(BaseHTTPRequestHandler):
    """The server the file is on: `/loop` redirects to itself, anything else is HELLO. A
    request line with an absolute URL (as a forward proxy gets) is recorded."""

    seen: list[tuple[str, str | None]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Proxy-Authorization")))
        if self.path == "/spaced":
            self.send_response(301)
            self.send_header("Location", "/a file#part")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.endswith("/loop"):
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(HELLO)))
        self.end_headers()
        self.wfile.write(HELLO)


class _Tunnel(BaseHTTPRequestHandler):
    """A CONNECT proxy: records the target and its Proxy-Authorization, then relays bytes."""

    seen: list[tuple[str, str | None]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_CONNECT(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Proxy-Authorization")))
        port = self.path.rpartition(":")[2]
        with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as upstream:
            self.send_response(200)
            self.end_headers()
            self.wfile.flush()
            _relay(self.connection, upstream)
        self.close_connection = True


def _relay(a: socket.socket, b: socket.socket) -> None:
    while True:
        ready, _, _ = select.select([a, b], [], [], 10)
        if not ready:
            return
        for sock in ready:
            try:
                data = sock.recv(1 << 16)
                if data:
                    (b if sock is a else a).sendall(data)
            except ConnectionError:  # a client that refused the certificate hangs up
                return
            if not data:
                return


def _serve(httpd: ThreadingHTTPServer) -> Iterator[str]:
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def origin() -> Iterator[str]:
    _Origin.seen = []
    yield from _serve(ThreadingHTTPServer(("127.0.0.1", 0), _Origin))


@pytest.fixture
def tunnel() -> Iterator[str]:
    _Tunnel.seen = []
    yield from _serve(ThreadingHTTPServer(("127.0.0.1", 0), _Tunnel))


@pytest.fixture
def tls_origin(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS origin for `localhost` with a self-signed certificate; (host:port, cert)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    _Origin.seen = []
    for address in _serve(httpd):
        yield address.replace("127.0.0.1", "localhost"), cert


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


def test_redirects_are_capped(origin: str) -> None:
    with pytest.raises(FetchError) as info:
        download(f"http://{origin}/loop", _Sink(), FAST)
    assert info.value.status == 302 and "more than 10 redirects" in info.value.message
    assert len(_Origin.seen) == 11


def test_a_redirect_target_is_quoted_as_urllib_quotes_it(origin: str) -> None:
    sink = _Sink()
    got = download(f"http://{origin}/spaced", sink, FAST)
    assert sink.data.getvalue() == HELLO and got.url == f"http://{origin}/a%20file"
    assert [path for path, _ in _Origin.seen] == ["/spaced", "/a%20file"]


def test_a_url_without_a_host_is_refused() -> None:
    with pytest.raises(FetchError, match="no host given"):
        download("http:///x", _Sink(), FAST)


def test_plain_http_goes_through_the_environment_proxy_with_its_credentials(
    origin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", f"http://ann:p%40ss@{origin}")
    sink = _Sink()
    got = download("http://files.example:8080/a/b.txt?x=1", sink, FAST)
    assert sink.data.getvalue() == HELLO and got.size == len(HELLO)
    basic = "Basic " + base64.b64encode(b"ann:p@ss").decode()
    assert _Origin.seen == [("http://files.example:8080/a/b.txt?x=1", basic)]


def test_no_proxy_is_honoured(origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: no proxy there
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{dead}")
    with pytest.raises(FetchError, match="Connection refused"):
        download(f"http://{origin}/f", _Sink(), FAST)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    sink = _Sink()
    download(f"http://{origin}/f", sink, FAST)
    assert sink.data.getvalue() == HELLO and _Origin.seen == [("/f", None)]


def test_https_goes_through_a_connect_tunnel_and_is_verified(
    tunnel: str, tls_origin: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, cert = tls_origin
    monkeypatch.setenv("https_proxy", f"http://ann:secret@{tunnel}")
    basic = "Basic " + base64.b64encode(b"ann:secret").decode()
    sink = _Sink()
    download(f"https://{address}/f", sink, RegistryOptions(ca_file=cert, retries=0))
    assert sink.data.getvalue() == HELLO
    assert _Tunnel.seen == [(address, basic)] and _Origin.seen == [("/f", None)]
    with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):  # system store only
        download(f"https://{address}/f", _Sink(), RegistryOptions(retries=0))


@pytest.mark.parametrize(
    ("value", "scheme", "proxy"),
    [
        ("http://proxy.lan:3128", "https", Proxy("http", "proxy.lan:3128")),
        ("proxy.lan:3128", "http", Proxy("http", "proxy.lan:3128")),
        ("https://u:p@proxy.lan", "http", Proxy("https", "proxy.lan", "Basic dTpw")),
        ("http://onlyuser@proxy.lan:8080/", "http", Proxy("http", "proxy.lan:8080")),
    ],
)
def test_parse_proxy(value: str, scheme: str, proxy: Proxy) -> None:
    assert parse_proxy(value, scheme) == proxy
