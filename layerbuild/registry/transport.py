"""HTTP for the registry client: pooled keep-alive connections, TLS choice, retries with backoff.

Built on ``http.client`` rather than urllib because a push or pull makes many requests to one
host, and urllib opens a new connection (and a new TLS handshake) for each. Connections are
pooled per (scheme, host:port) and handed to one thread at a time, so parallel layer transfers
each get their own.

Retry policy: connection errors, 429 and 5xx are retried with exponential backoff (honouring a
short ``Retry-After``), but only when the request body can be sent again; callers pass a body
*factory* for streamed uploads. Everything else is returned to the caller, which knows what a
404 or 401 means for its request.

Which scheme: plain HTTP for ``localhost``, ``127.0.0.1`` and ``::1`` (as docker does) and for
hosts given with ``--insecure-registry``; HTTPS otherwise, verified against the system CA store
plus an optional ``--registry-ca`` file.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import BinaryIO

from layerbuild.errors import RegistryError
from layerbuild.registry.options import RegistryOptions

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_IO_BLOCK = 1 << 20
_MAX_RETRY_AFTER = 30.0

Body = bytes | Callable[[], BinaryIO] | None


class RegistryUnavailable(RegistryError):
    """The registry could not be reached, or kept answering 5xx/429: worth retrying later."""

    reference = "registry-unavailable"


def _hostname(netloc: str) -> str:
    if netloc.startswith("["):
        return netloc[: netloc.find("]") + 1]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def uses_plain_http(netloc: str, options: RegistryOptions) -> bool:
    """True when `netloc` (host[:port]) is spoken to over HTTP rather than HTTPS."""
    host = _hostname(netloc)
    return host in _LOOPBACK or netloc in options.insecure or host in options.insecure


def redact_url(url: str) -> str:
    """The URL without its query: upload URLs carry opaque state, realms may carry accounts."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class Response:
    """An HTTP response whose connection returns to the pool once the body is consumed."""

    def __init__(
        self,
        url: str,
        raw: http.client.HTTPResponse,
        release: Callable[[http.client.HTTPConnection, bool], None],
        conn: http.client.HTTPConnection,
    ) -> None:
        self.url = url
        self.status = raw.status
        self.headers = raw.headers
        self._raw = raw
        self._release = release
        self._conn: http.client.HTTPConnection | None = conn

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def read(self) -> bytes:
        """The whole body (the connection is released afterwards)."""
        try:
            data = self._raw.read()
        except (OSError, http.client.HTTPException):
            self._finish(reusable=False)
            raise
        self._finish(reusable=True)
        return data

    def stream(self, block: int = _IO_BLOCK) -> Iterator[bytes]:
        """The body in blocks; connection errors propagate (the caller may resume)."""
        try:
            while True:
                chunk = self._raw.read1(block) if block else self._raw.read()
                if not chunk:
                    break
                yield chunk
        except BaseException:
            self._finish(reusable=False)
            raise
        # a body cut short ends like a complete one in read1(): only a drained one is reusable,
        # and read1() never marks the response closed, which http.client needs before the
        # connection's next request; read() of the empty rest does
        drained = not self._raw.length
        if drained:
            self._raw.read()
        self._finish(reusable=drained)

    def close(self) -> None:
        """Give up on the body; small bodies are drained so the connection can be reused."""
        if self._conn is None:
            return
        length = self._raw.length
        reusable = length is not None and length <= 64 << 10
        if reusable:
            try:
                self._raw.read()
            except (OSError, http.client.HTTPException):
                reusable = False
        self._finish(reusable=reusable)

    def _finish(self, *, reusable: bool) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            self._release(conn, reusable and not self._raw.will_close)


class Transport:
    """Pooled HTTP(S) connections with retries; safe to share between threads."""

    def __init__(self, options: RegistryOptions) -> None:
        self.options = options
        self._idle: dict[tuple[str, str], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            context = ssl.create_default_context()
            if self.options.ca_file is not None:
                try:
                    context.load_verify_locations(cafile=str(self.options.ca_file))
                except (OSError, ssl.SSLError) as e:
                    raise RegistryError(
                        f"cannot load the registry CA file {self.options.ca_file}: {e}",
                        hint="pass a PEM file with --registry-ca",
                    ) from e
            self._ssl = context
        return self._ssl

    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        with self._lock:
            idle = self._idle.get((scheme, netloc))
            if idle:
                return idle.pop()
        timeout = self.options.timeout
        if scheme == "https":
            return http.client.HTTPSConnection(
                netloc, timeout=timeout, context=self._ssl_context(), blocksize=_IO_BLOCK
            )
        return http.client.HTTPConnection(netloc, timeout=timeout, blocksize=_IO_BLOCK)

    def _releaser(
        self, key: tuple[str, str]
    ) -> Callable[[http.client.HTTPConnection, bool], None]:
        def release(conn: http.client.HTTPConnection, reusable: bool) -> None:
            if not reusable:
                conn.close()
                return
            with self._lock:
                self._idle.setdefault(key, []).append(conn)

        return release

    def close(self) -> None:
        with self._lock:
            pools, self._idle = self._idle, {}
        for conns in pools.values():
            for conn in conns:
                conn.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        retry: bool = True,
    ) -> Response:
        """Send one request (retrying as the module docstring says); returns any status."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryError(f"cannot request {redact_url(url)}: not an http(s) URL")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        all_headers = dict(self.options.extra_headers)
        all_headers.update(headers or {})
        attempts = self.options.retries + 1 if retry else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                resp = self._send_once(
                    parts.scheme, parts.netloc, method, target, all_headers, body
                )
            except (OSError, http.client.HTTPException) as e:
                # a name that does not resolve will not resolve a second later either
                permanent = isinstance(e, ssl.SSLCertVerificationError | socket.gaierror)
                if permanent or last:
                    raise unreachable(method, url, e) from e
                self._sleep(attempt, None)
                continue
            if resp.status in RETRY_STATUSES and not last:
                retry_after = resp.header("Retry-After")
                resp.close()
                self._sleep(attempt, retry_after)
                continue
            return resp
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _send_once(
        self,
        scheme: str,
        netloc: str,
        method: str,
        target: str,
        headers: dict[str, str],
        body: Body,
    ) -> Response:
        conn = self._connect(scheme, netloc)
        payload = body() if callable(body) else body
        try:
            conn.request(method, target, body=payload, headers=headers)
            raw = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        finally:
            if payload is not None and not isinstance(payload, bytes):
                payload.close()
        url = f"{scheme}://{netloc}{target}"
        return Response(url, raw, self._releaser((scheme, netloc)), conn)

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.options.backoff * (2**attempt)
        if retry_after and retry_after.isdigit():
            delay = max(delay, min(float(retry_after), _MAX_RETRY_AFTER))
        time.sleep(delay)


def unreachable(method: str, url: str, err: BaseException) -> RegistryError:
    host = urllib.parse.urlsplit(url).netloc
    if isinstance(err, ssl.SSLError):
        return RegistryError(
            f"TLS with {host} failed: {err}",
            hint="pass the registry's CA certificate with --registry-ca FILE, or, for a "
            f"registry without TLS, --insecure-registry {host}",
        )
    return RegistryUnavailable(
        f"cannot reach registry {host} ({method} {redact_url(url)}): {err}",
        hint="check that the registry is running and reachable; for a plain-HTTP registry "
        f"that is not on localhost pass --insecure-registry {host}",
    )
