"""Tests of engine/fetch.py (over registry/download.py) against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from layerbuild.engine.fetch import fetch_url
from layerbuild.errors import ChecksumMismatch, FetchError, LayerbuildError

HELLO = b"hello from the server\n"
BIG = bytes(range(256)) * (3 * 4096 + 7)  # ~3 MiB: several read chunks
LAST_MODIFIED = "Tue, 02 Jan 2024 03:04:05 GMT"
LAST_MODIFIED_EPOCH = 1704164645


_SEEN: dict[str, int] = {}  # requests per path, for the routes that fail only once
_SEEN_LOCK = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    """Routes: each path shows one behaviour a download can meet."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        routes: dict[str, Callable[[], None]] = {
            "/files/hello.txt": lambda: self._send(HELLO, {"Last-Modified": LAST_MODIFIED}),
            "/files/big.bin": lambda: self._send(BIG),
            "/files/with%20space.txt": lambda: self._send(HELLO),
            "/": lambda: self._send(HELLO),
            "/redirect": lambda: self._redirect(302, "/files/hello.txt"),
            "/redirect308": lambda: self._redirect(308, "/redirect"),
            "/to-file": lambda: self._redirect(302, "file:///etc/passwd"),
            "/disposition": lambda: self._send(
                HELLO, {"Content-Disposition": 'attachment; filename="report.csv"'}
            ),
            "/evil-disposition": lambda: self._send(
                HELLO, {"Content-Disposition": 'attachment; filename="../../etc/cron.d/x"'}
            ),
            "/bad-date": lambda: self._send(HELLO, {"Last-Modified": "yesterday"}),
            "/truncated": self._truncated,
            "/slow": self._slow,
            "/forbidden": lambda: self.send_error(403),
            "/busy-once": lambda: self._fail_first(self._busy),
            "/cut-once": lambda: self._fail_first(self._truncated),
        }
        route = routes.get(self.path)
        if route is None:
            self.send_error(404)
        else:
            route()

    def _send(self, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, code: int, location: str) -> None:
        self.send_response(code)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _truncated(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"only a little")
        self.wfile.flush()
        self.close_connection = True

    def _fail_first(self, failure: Callable[[], None]) -> None:
        """The first request of the path fails with `failure`, later ones get HELLO."""
        with _SEEN_LOCK:
            _SEEN[self.path] = _SEEN.get(self.path, 0) + 1
            first = _SEEN[self.path] == 1
        if first:
            failure()
        else:
            self._send(HELLO, {"Last-Modified": LAST_MODIFIED})

    def _busy(self) -> None:
        self.send_response(503)
        self.send_header("Retry-After", "0")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _slow(self) -> None:
        time.sleep(1.5)
        self._send(HELLO)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hanging up on /slow is the point of that test, not a failure


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = _QuietServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # a proxy from the environment would route 127.0.0.1 requests elsewhere
    for name in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_download_names_file_after_url_and_keeps_last_modified(
    server: str, tmp_path: Path
) -> None:
    got = fetch_url(f"{server}/files/hello.txt", tmp_path)
    assert got.path.read_bytes() == HELLO
    assert got.path.parent == tmp_path
    assert got.filename == "hello.txt"
    assert got.mtime == LAST_MODIFIED_EPOCH
    assert got.digest == _sha256(HELLO)


def test_large_body_is_streamed_and_hashed(server: str, tmp_path: Path) -> None:
    got = fetch_url(f"{server}/files/big.bin", tmp_path, checksum=_sha256(BIG))
    assert got.path.stat().st_size == len(BIG)
    assert got.digest == _sha256(BIG)
    assert got.mtime is None


def test_redirects_are_followed_and_name_comes_from_the_given_url(
    server: str, tmp_path: Path
) -> None:
    got = fetch_url(f"{server}/redirect308", tmp_path)
    assert got.path.read_bytes() == HELLO
    assert got.filename == "redirect308"


def test_redirect_to_another_scheme_is_refused(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as info:
        fetch_url(f"{server}/to-file", tmp_path)
    assert info.value.status == 302
    assert "file:///etc/passwd" in info.value.message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/disposition", "report.csv"),
        ("/evil-disposition", "x"),
        ("/files/with%20space.txt", "with space.txt"),
        ("/", "download"),
    ],
)
def test_filename(server: str, tmp_path: Path, path: str, name: str) -> None:
    assert fetch_url(server + path, tmp_path).filename == name


def test_unparsable_last_modified_is_ignored(server: str, tmp_path: Path) -> None:
    assert fetch_url(f"{server}/bad-date", tmp_path).mtime is None


def test_checksum_mismatch_names_both_digests_and_url(server: str, tmp_path: Path) -> None:
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ChecksumMismatch) as info:
        fetch_url(f"{server}/files/hello.txt", tmp_path, checksum=wrong)
    text = str(info.value)
    assert wrong in text and _sha256(HELLO) in text and "/files/hello.txt" in text
    assert info.value.expected == wrong and info.value.actual == _sha256(HELLO)
    assert list(tmp_path.iterdir()) == []


def test_sha512_checksum(server: str, tmp_path: Path) -> None:
    expected = "sha512:" + hashlib.sha512(HELLO).hexdigest()
    assert fetch_url(f"{server}/files/hello.txt", tmp_path, checksum=expected).digest == expected


@pytest.mark.parametrize("checksum", ["sha256:abc", "md5:" + "0" * 32, "sha256:" + "g" * 64])
def test_malformed_checksum(server: str, tmp_path: Path, checksum: str) -> None:
    with pytest.raises(FetchError, match="not a digest"):
        fetch_url(f"{server}/files/hello.txt", tmp_path, checksum=checksum)


@pytest.mark.parametrize(("path", "status"), [("/nope", 404), ("/forbidden", 403)])
def test_http_error_status(server: str, tmp_path: Path, path: str, status: int) -> None:
    with pytest.raises(FetchError) as info:
        fetch_url(server + path, tmp_path)
    assert info.value.status == status
    assert info.value.url == server + path
    assert f"HTTP {status}" in info.value.message
    assert isinstance(info.value, LayerbuildError)
    assert list(tmp_path.iterdir()) == []


def test_truncated_body_fails_and_leaves_nothing(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError):
        fetch_url(f"{server}/truncated", tmp_path, backoff=0.01)
    assert list(tmp_path.iterdir()) == []


def test_timeout(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as info:
        fetch_url(f"{server}/slow", tmp_path, timeout=0.3, backoff=0.01)
    assert info.value.status is None


def test_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError) as info:
        fetch_url(f"http://127.0.0.1:{port}/x", tmp_path, timeout=5, backoff=0.01)
    assert info.value.status is None and "127.0.0.1" in info.value.url


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "/relative"])
def test_only_http_urls(tmp_path: Path, url: str) -> None:
    with pytest.raises(FetchError, match="only http and https"):
        fetch_url(url, tmp_path)


@pytest.mark.parametrize("path", ["/busy-once", "/cut-once"])
def test_a_503_or_a_cut_body_is_retried(server: str, tmp_path: Path, path: str) -> None:
    """New with the registry's transport: a 503 (Retry-After: 0), or a body cut short, then
    a whole answer, is a download; the file holds the whole answer only."""
    _SEEN.pop(path, None)
    got = fetch_url(server + path, tmp_path, checksum=_sha256(HELLO), backoff=0.01)
    assert _SEEN[path] == 2
    assert got.path.read_bytes() == HELLO and got.mtime == LAST_MODIFIED_EPOCH
    assert [p.name for p in tmp_path.iterdir()] == [got.path.name]


def test_without_retries_a_503_fails_with_its_status(server: str, tmp_path: Path) -> None:
    _SEEN.pop("/busy-once", None)
    with pytest.raises(FetchError) as info:
        fetch_url(f"{server}/busy-once", tmp_path, retries=0)
    assert info.value.status == 503 and "HTTP 503" in info.value.message
    assert list(tmp_path.iterdir()) == []
