"""Download one http(s) URL into a sink over the registry's transport (one HTTP stack).

What a download gets from the transport: pooled connections, a timeout per connect and read,
TLS verified against the system CA store (never turned off), and retries with backoff on
connection errors, 429 and 5xx, honouring ``Retry-After``. What this module adds:

- redirects (301, 302, 303, 307, 308) are followed, up to MAX_REDIRECTS (urllib's and Go's
  limit), but only to http and https URLs: never to file:, ftp: or other schemes;
- a body cut short (a reset, a timeout, fewer bytes than Content-Length) is fetched again from
  the start, within the same retry budget: the sink is reset first;
- proxies come from the environment as urllib reads them (``http_proxy``, ``https_proxy``,
  ``no_proxy``, upper case too; ``HTTP_PROXY`` not when run as a CGI script), with Basic
  credentials from the proxy URL.

A failure is a FetchError naming the URL that was asked for (and the HTTP status, if any).
An error of the sink (a full disk) is not the server's: it is raised as it is, never retried.
"""

from __future__ import annotations

import base64
import email.message
import http.client
import string
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from layerbuild.errors import FetchError, RegistryError
from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.transport import Proxy, ProxyFor, Response, Transport

SCHEMES = ("http", "https")
MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 1 << 20


class Sink(Protocol):
    """Where the body goes; `reset` starts it again before a body is fetched anew."""

    def write(self, data: bytes, /) -> object: ...

    def reset(self) -> None: ...


@dataclass(frozen=True)
class Downloaded:
    url: str  # the URL the body came from, after redirects
    headers: email.message.Message
    size: int


class _Cut(Exception):
    """The body broke off while it was read (the server's fault, so worth another try)."""


def download(
    url: str, sink: Sink, options: RegistryOptions, headers: Mapping[str, str] | None = None
) -> Downloaded:
    """GET `url` (an http or https URL) into `sink`; FetchError when it cannot be had."""
    if not urllib.parse.urlsplit(url).netloc:
        raise FetchError(
            f"cannot download {url}: no host given",
            url=url,
            hint="check the URL and that this machine can reach it",
        )
    transport = Transport(options, environment_proxies())
    try:
        for attempt in range(options.retries + 1):
            resp = _open(transport, url, headers or {})
            try:
                size = _drain(url, resp, sink)
            except _Cut as cut:
                resp.close()
                if attempt == options.retries:
                    raise _failed(url, cut.__cause__ or cut, options.timeout) from None
                time.sleep(transport.retry_delay(attempt, None))
                continue
            except BaseException:
                resp.close()
                raise
            return Downloaded(resp.url, resp.headers, size)
        raise AssertionError("unreachable: the last attempt returns or raises")
    finally:
        transport.close()


def _open(transport: Transport, url: str, headers: Mapping[str, str]) -> Response:
    """The response with the body, redirects followed; FetchError for any other status."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        try:
            resp = transport.request("GET", current, headers=headers)
        except RegistryError as e:
            raise _failed(url, e.__cause__ or e, transport.options.timeout) from None
        location = resp.header("Location")
        if resp.status not in _REDIRECTS or location is None:
            break
        resp.close()
        target = urllib.parse.urldefrag(urllib.parse.urljoin(current, location)).url
        # as urllib does: a Location with spaces or non-ASCII still names a requestable URL
        target = urllib.parse.quote(target, encoding="iso-8859-1", safe=string.punctuation)
        if urllib.parse.urlsplit(target).scheme.lower() not in SCHEMES:
            raise FetchError(
                f"{current} redirects to {target}, which is not an http(s) URL",
                url=current,
                status=resp.status,
            )
        current = target
    else:
        raise FetchError(
            f"cannot download {url}: more than {MAX_REDIRECTS} redirects",
            url=url,
            status=resp.status,
            hint="the server redirects in a loop; check the URL",
        )
    if not 200 <= resp.status < 300:
        resp.close()
        raise FetchError(
            f"cannot download {url}: HTTP {resp.status} {resp.reason}",
            url=url,
            status=resp.status,
            hint=_status_hint(resp.status),
        )
    return resp


def _drain(url: str, resp: Response, sink: Sink) -> int:
    """Copy the body into the sink; _Cut when the server's side of it breaks off."""
    sink.reset()
    size = 0
    blocks: Iterator[bytes] = resp.stream(_CHUNK)
    while True:
        try:
            block = next(blocks, b"")
        except (OSError, http.client.HTTPException) as e:
            raise _Cut() from e
        if not block:
            break
        sink.write(block)  # a fault of the sink is not the server's: raised as it is
        size += len(block)
    # http.client notices most short bodies itself; this also covers a server that closes the
    # connection early on a response it did not mark as chunked
    declared = resp.header("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) != size:
        short = FetchError(
            f"cannot download {url}: got {size} bytes, the server announced {declared}",
            url=url,
            status=resp.status,
            hint="the connection was cut; retry",
        )
        raise _Cut() from short
    return size


def _failed(url: str, err: BaseException, timeout: float) -> FetchError:
    if isinstance(err, FetchError):
        return err
    if isinstance(err, TimeoutError | http.client.HTTPException):
        hint = (
            f"the server did not answer within {timeout:g}s or dropped the connection; "
            "retry, or raise the timeout"
        )
    else:
        hint = "check the URL and that this machine can reach it"
    return FetchError(f"cannot download {url}: {err}", url=url, hint=hint)


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return "the server refused access; the URL may need to be public or pre-signed"
    if status == 404:
        return "check the URL; the file may have moved"
    if status >= 500:
        return "the server failed; retry later"
    return "check the URL"


def environment_proxies() -> ProxyFor:
    """The proxies of the environment, as urllib's default opener picks them."""
    proxies = urllib.request.getproxies_environment()

    def proxy_for(scheme: str, netloc: str) -> Proxy | None:
        given = proxies.get(scheme)
        if not given or urllib.request.proxy_bypass(netloc):  # no_proxy, as urllib reads it
            return None
        return parse_proxy(given, scheme)

    return proxy_for


def parse_proxy(value: str, default_scheme: str) -> Proxy:
    """`[scheme://][user:password@]host[:port]` (urllib's forms) as a Proxy."""
    parts = urllib.parse.urlsplit(value if "://" in value else f"//{value}")
    scheme = parts.scheme.lower() or default_scheme
    authorization = None
    if parts.username and parts.password:  # urllib sends credentials only with both
        pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password)}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    host = urllib.parse.unquote(parts.netloc.rpartition("@")[2])
    return Proxy(scheme if scheme in SCHEMES else "http", host, authorization)
