"""HTTP for the registry client: pooled keep-alive connections, TLS choice, retries with backoff.

Built on ``http.client`` rather than urllib because a push or pull makes many requests to one
host, and urllib opens a new connection (and a new TLS handshake) for each. Connections are
pooled per (scheme, host:port) and handed to one thread at a time, so parallel layer transfers
each get their own.

Retry policy: connection errors, 429 and 5xx are retried with exponential backoff (honouring a
``Retry-After`` of either form up to _MAX_RETRY_AFTER), but only when the request body can be
sent again; callers pass a body *factory* for streamed uploads. With ``read=True`` (every
request but a blob download) the response body is read inside the same retried unit, so a body
cut short, a reset or a timeout while reading it is retried like a failed connect: an
``IncompleteRead`` never reaches the user. Everything else is returned to the caller, which
knows what a 404 or 401 means for its request.

A forward proxy is used only when the caller passes a ``proxy_for`` (ADD's downloads take the
environment's, registry/download.py): plain HTTP goes to the proxy with the absolute URL as
its target, HTTPS through a CONNECT tunnel, verified against the target host as without one.

Which scheme: plain HTTP for ``localhost``, ``127.0.0.1`` and ``::1`` (as docker does) and for
hosts given with ``--insecure-registry``; HTTPS otherwise, verified against the system CA store
plus an optional ``--registry-ca`` file.
"""

from __future__ import annotations

import email.utils
import http.client
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from layerbuild.errors import RegistryError, RegistryUnavailable
from layerbuild.registry.options import RegistryOptions

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_IO_BLOCK = 1 << 20
_MAX_RETRY_AFTER = 30.0
# bodies read whole (manifests, tokens, error documents): far above the 4 MiB manifest limit,
# far below what would hurt; a longer body is cut here and refused by its reader
_MAX_READ = 8 << 20

Body = bytes | Callable[[], BinaryIO] | None


@dataclass(frozen=True, slots=True)
class Proxy:
    """A forward proxy: how to reach it and the Proxy-Authorization it needs, if any."""

    scheme: str  # "http" | "https": how the proxy itself is spoken to (plain HTTP targets)
    netloc: str  # host:port of the proxy
    authorization: str | None = None


ProxyFor = Callable[[str, str], Proxy | None]  # (scheme, host:port) -> its proxy, or None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header (delta-seconds or HTTP-date) as seconds to wait, bounded by
    _MAX_RETRY_AFTER; None when absent or unreadable (then only the backoff applies)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive one is read as such
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


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
        self.reason = raw.reason
        self.headers = raw.headers
        self._raw = raw
        self._release = release
        self._conn: http.client.HTTPConnection | None = conn
        self._body: bytes | None = None  # set by load(): read inside the retry policy

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def load(self, limit: int = _MAX_READ, *, lenient: bool = False) -> None:
        """Read the body now (up to `limit` bytes); read() and stream() then return it.

        A body shorter than its Content-Length (or a chunked body cut short) raises
        IncompleteRead here, inside the caller's retry policy; `lenient` keeps an empty body
        instead (for a final error answer, whose status says more than its lost detail).
        """
        try:
            length = self._raw.length
            if length is not None and length <= limit:
                data, reusable = self._raw.read(), True
            else:
                data = self._raw.read(limit)
                if length is not None and len(data) < limit:
                    raise http.client.IncompleteRead(data, length - len(data))
                reusable = self._raw.isclosed()  # only a body read to its end
        except (OSError, http.client.HTTPException):
            self._finish(reusable=False)
            if not lenient:
                raise
            data, reusable = b"", False
        except BaseException:
            self._finish(reusable=False)
            raise
        self._body = data
        self._finish(reusable=reusable)

    def read(self) -> bytes:
        """The whole body (the connection is released afterwards)."""
        if self._body is not None:
            return self._body
        try:
            data = self._raw.read()
        except (OSError, http.client.HTTPException):
            self._finish(reusable=False)
            raise
        self._finish(reusable=True)
        return data

    def stream(self, block: int = _IO_BLOCK) -> Iterator[bytes]:
        """The body in blocks; connection errors propagate (the caller may resume)."""
        if self._body is not None:
            if self._body:
                yield self._body
            return
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

    def __init__(self, options: RegistryOptions, proxy_for: ProxyFor | None = None) -> None:
        self.options = options
        self._proxy_for = proxy_for
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

    def _connect(
        self, scheme: str, netloc: str, proxy: Proxy | None
    ) -> http.client.HTTPConnection:
        with self._lock:
            idle = self._idle.get((scheme, netloc))
            if idle:
                return idle.pop()
        if proxy is None:
            return self._connection(scheme, netloc)
        if scheme != "https":
            return self._connection(proxy.scheme, proxy.netloc)
        conn = self._connection("https", proxy.netloc)
        auth = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else None
        conn.set_tunnel(netloc, headers=auth)
        return conn

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
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
        read: bool = False,
    ) -> Response:
        """Send one request (retrying as the module docstring says); returns any status.

        `read`: read the body inside the retried unit (Response.read() then cannot fail).
        """
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
                if read and resp.status not in RETRY_STATUSES:
                    resp.load()
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
            if read and resp.status in RETRY_STATUSES:
                resp.load(lenient=True)
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
        url = f"{scheme}://{netloc}{target}"
        proxy = self._proxy_for(scheme, netloc) if self._proxy_for is not None else None
        conn = self._connect(scheme, netloc, proxy)
        if proxy is not None and scheme == "http":
            target = url  # a proxy is asked for the absolute URL
            if proxy.authorization:
                headers = {**headers, "Proxy-Authorization": proxy.authorization}
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
        return Response(url, raw, self._releaser((scheme, netloc)), conn)

    def retry_delay(self, attempt: int, retry_after: str | float | None) -> float:
        """Seconds to wait before retry `attempt` (0-based): the backoff, or longer when the
        registry said so with ``Retry-After`` (a header value, or seconds already bounded)."""
        delay = self.options.backoff * 2.0**attempt
        asked = retry_after_seconds(retry_after) if isinstance(retry_after, str) else retry_after
        return delay if asked is None else max(delay, float(asked))

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        time.sleep(self.retry_delay(attempt, retry_after))


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
