"""A fault-injecting HTTP proxy between layerbuild and a real registry (or token server).

Name: FaultProxy, Fault, Injected.
Scope: tests/integration/registry. `FaultProxy(upstream_port)` listens on two ports of
       127.0.0.1 (`host`, and `second_host`, which serves the same upstream: the target of the
       `redirect` fault). It reads each request, forwards it on a fresh upstream connection and
       returns the answer, unless a rule matches the request: `proxy.add(method, path_regex,
       fault, nth=N, times=K)` injects `fault` into the Nth to (N+K-1)th matching requests
       (times=None: every one from the Nth; a rule counts the requests it matched since it was
       added). Faults: cut the answer after N body bytes and close; truncate (a Content-Length
       larger than what is sent, then close); reset (RST via
       SO_LINGER 0 after N bytes); answer a status (5xx/429, optionally with Retry-After) without
       asking upstream; flip one body byte; redirect (307) to the second port; stall (send
       nothing, never close until the proxy closes); cut the request body after N bytes (an
       upload cut part-way). `proxy.injected` records every fault applied, `proxy.seen` every
       request (method, path?query, time), so tests can assert that faults happened and when.
Depends: the standard library only (threads and sockets).
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import BinaryIO

CUT, TRUNCATE, RESET, STATUS, TAMPER, REDIRECT, STALL, CUT_UPLOAD = (
    "cut",
    "truncate",
    "reset",
    "status",
    "tamper",
    "redirect",
    "stall",
    "cut-upload",
)
_NO_BODY = (204, 304)
KEEP, CLOSE, ABORT = "keep", "close", "abort"  # what becomes of the client connection


@dataclass(frozen=True)
class Fault:
    """What to do to a request: `kind` is one of the constants above."""

    kind: str
    after: int = 0  # body bytes sent (cut, reset) or forwarded (cut-upload) before the fault
    status: int = 503  # for STATUS
    retry_after: str | None = None  # for STATUS: the Retry-After header, when given


@dataclass(frozen=True)
class Injected:
    method: str
    target: str  # path and query
    kind: str
    at: float  # time.monotonic() when the fault was applied


@dataclass
class _Rule:
    method: str
    path: re.Pattern[str]
    fault: Fault
    nth: int
    times: int | None
    matched: int = 0

    def take(self, method: str, path: str) -> bool:
        if method != self.method or not self.path.search(path):
            return False
        self.matched += 1
        first, count = self.nth, self.times
        return self.matched >= first and (count is None or self.matched < first + count)


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    length: int

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class _Response:
    status_line: bytes
    headers: list[tuple[str, str]]
    body: bytes = b""

    @property
    def status(self) -> int:
        return int(self.status_line.split()[1])


class FaultProxy:
    """See the module docstring; `close()` (or the context manager) stops it."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.injected: list[Injected] = []
        self.seen: list[tuple[str, str, float]] = []
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
        self.port, self.second_port = (int(s.getsockname()[1]) for s in self._listeners)
        for listener in self._listeners:
            threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def second_host(self) -> str:
        return f"127.0.0.1:{self.second_port}"

    def add(
        self, method: str, path: str, fault: Fault, *, nth: int = 1, times: int | None = 1
    ) -> FaultProxy:
        with self._lock:
            self._rules.append(_Rule(method, re.compile(path), fault, nth, times))
        return self

    def clear(self) -> None:
        """Drop every rule: from now on requests pass untouched."""
        with self._lock:
            self._rules.clear()

    def kinds(self) -> list[str]:
        return [i.kind for i in self.injected]

    def close(self) -> None:
        self._stop.set()
        for s in [*self._listeners, *self._socks]:
            _close(s)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- serving -------------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self._socks.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        reader = client.makefile("rb")
        end = CLOSE
        try:
            while not self._stop.is_set():
                request = _read_request(reader)
                end = CLOSE if request is None else self._answer(client, reader, request)
                if end != KEEP:
                    break
        except OSError:
            pass
        finally:
            reader.close()  # the socket's fd closes only once its file is closed too
            if end == ABORT:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()  # with linger 0 and no shutdown: an RST, not a FIN
            else:
                _close(client)

    def _fault_for(self, request: _Request) -> Fault | None:
        path = request.target.split("?", 1)[0]
        with self._lock:
            self.seen.append((request.method, request.target, time.monotonic()))
            for rule in self._rules:
                if rule.take(request.method, path):
                    self.injected.append(
                        Injected(request.method, request.target, rule.fault.kind, time.monotonic())
                    )
                    return rule.fault
        return None

    def _answer(self, client: socket.socket, reader: BinaryIO, request: _Request) -> str:
        """Serve one request; say whether the client connection goes on (KEEP) or ends."""
        fault = self._fault_for(request)
        kind = fault.kind if fault else None
        if fault is not None and kind in (STATUS, REDIRECT, STALL):
            _drain(reader, request.length)
            if kind == STALL:
                self._stop.wait()
                return CLOSE
            client.sendall(_made_answer(request, fault, self.second_port))
            return KEEP
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        self._socks.append(upstream)
        try:
            upstream.sendall(_request_head(request))
            limit = fault.after if fault is not None and kind == CUT_UPLOAD else None
            if not _forward_body(reader, upstream, request.length, limit):
                return CLOSE  # the upload was cut: the client and the registry both see it
            response = _read_response(upstream.makefile("rb"), request.method)
        finally:
            _close(upstream)
        return _send(client, response, fault)


def _read_request(reader: BinaryIO) -> _Request | None:
    line = reader.readline()
    if not line.strip():
        return None
    method, target, version = line.decode("latin-1").split()
    headers = _read_headers(reader)
    request = _Request(method, target, version, headers, 0)
    if (request.header("Transfer-Encoding") or "").lower() == "chunked":
        raise OSError("chunked request bodies are not proxied")
    request.length = int(request.header("Content-Length") or 0)
    return request


def _read_headers(reader: BinaryIO) -> list[tuple[str, str]]:
    headers = []
    while True:
        line = reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return headers
        key, _, value = line.decode("latin-1").partition(":")
        headers.append((key.strip(), value.strip()))


def _request_head(request: _Request) -> bytes:
    # one upstream connection per request: the answer ends where upstream closes
    headers = [(k, v) for k, v in request.headers if k.lower() != "connection"]
    headers.append(("Connection", "close"))
    lines = [f"{request.method} {request.target} {request.version}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _forward_body(
    reader: BinaryIO, upstream: socket.socket, length: int, limit: int | None
) -> bool:
    left = length if limit is None else min(length, limit)
    while left:
        data = reader.read(min(left, 1 << 20))
        if not data:
            return False
        upstream.sendall(data)
        left -= len(data)
    return limit is None or limit >= length


def _drain(reader: BinaryIO, length: int) -> None:
    while length:
        data = reader.read(min(length, 1 << 20))
        if not data:
            return
        length -= len(data)


def _read_response(reader: BinaryIO, method: str) -> _Response:
    status_line = reader.readline().rstrip(b"\r\n")
    response = _Response(status_line, _read_headers(reader))
    if method != "HEAD" and response.status not in _NO_BODY:
        response.body = reader.read()  # upstream closes after the answer (Connection: close)
    reader.close()
    return response


def _made_answer(request: _Request, fault: Fault, second_port: int) -> bytes:
    if fault.kind == REDIRECT:
        location = f"http://127.0.0.1:{second_port}{request.target}"
        head = f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\n"
        return (head + "Content-Length: 0\r\n\r\n").encode()
    body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected by the test proxy"}]}'
    head = f"HTTP/1.1 {fault.status} Injected\r\nContent-Type: application/json\r\n"
    if fault.retry_after is not None:
        head += f"Retry-After: {fault.retry_after}\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _send(client: socket.socket, response: _Response, fault: Fault | None) -> str:
    headers = [(k, v) for k, v in response.headers if k.lower() != "connection"]
    body = response.body
    if fault is not None and fault.kind == TAMPER and body:
        middle = len(body) // 2
        body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]
    if fault is not None and fault.kind == TRUNCATE:
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body) + 1000)))
    lines = [response.status_line.decode("latin-1")] + [f"{k}: {v}" for k, v in headers]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if fault is None or fault.kind in (TAMPER, CUT_UPLOAD):
        client.sendall(head + body)
        return KEEP
    if fault.kind == TRUNCATE:
        client.sendall(head + body)
        return CLOSE
    client.sendall(head + body[: fault.after])  # CUT or RESET
    return ABORT if fault.kind == RESET else CLOSE


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
