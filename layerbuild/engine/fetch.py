"""Download the source of `ADD <url> <dest>`: stream to disk, hash on the way, verify.

Docker's rules for remote ADD sources (BuildKit `source/http`), which this follows:

- the file name is the Content-Disposition `filename` if the server sends one (its last path
  component only), else the last component of the URL's path, else `download`;
- the file's mtime is the Last-Modified header when present;
- `ADD --checksum=sha256:<hex>` must match the content, or the build fails;
- remote files are never unpacked and get mode 0600 (the caller applies both).

Redirects are followed, but only to http and https URLs. Proxies from the environment
(`https_proxy`, `no_proxy`, ...) are honoured, as urllib does by default.
"""

from __future__ import annotations

import email.message
import email.utils
import hashlib
import http.client
import os
import posixpath
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import IO, Any

from layerbuild.digest import Digest
from layerbuild.errors import ExitCode, LayerbuildError

_CHUNK = 1 << 20
_SCHEMES = ("http", "https")
_USER_AGENT = "layerbuild (ADD)"
_HEX_LENGTHS = {"sha256": 64, "sha512": 128}


class FetchError(LayerbuildError):
    """A remote ADD source could not be downloaded; `url` and the HTTP `status` if any."""

    reference = "fetch"
    # the same family as RegistryError: a remote source answered badly
    exit_code = ExitCode.REGISTRY

    def __init__(
        self, message: str, *, url: str, status: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.url = url
        self.status = status


class ChecksumMismatch(FetchError):
    """The downloaded content does not match `ADD --checksum`."""

    reference = "fetch-checksum"

    def __init__(self, url: str, expected: str, actual: str) -> None:
        super().__init__(
            f"ADD {url}: checksum mismatch: expected {expected}, got {actual}",
            url=url,
            hint="the file on the server changed or the --checksum is wrong; if the new content "
            f"is trusted, use --checksum={actual}",
        )
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class FetchedFile:
    path: Path  # where the content was written (a unique name inside dest_dir)
    filename: str  # the name Docker gives the file in the image
    mtime: int | None  # seconds since the epoch, from Last-Modified; None if not sent
    digest: Digest  # of the content, with the --checksum algorithm (sha256 by default)


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never to file:, ftp: or other schemes."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme.lower() not in _SCHEMES:
            raise FetchError(
                f"{req.full_url} redirects to {newurl}, which is not an http(s) URL",
                url=req.full_url,
                status=code,
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_url(
    url: str, dest_dir: Path, *, checksum: str | None = None, timeout: float = 60
) -> FetchedFile:
    """Download `url` into a new file in `dest_dir`; FetchError on any failure (nothing left)."""
    if urllib.parse.urlsplit(url).scheme.lower() not in _SCHEMES:
        raise FetchError(
            f"cannot download {url}: only http and https URLs are supported",
            url=url,
            hint="for a local file, give a path in the build context",
        )
    algorithm, expected = _parse_checksum(url, checksum)
    opener = urllib.request.build_opener(_HttpOnlyRedirects())
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with opener.open(request, timeout=timeout) as response:
            digest, path = _store(url, response, dest_dir, algorithm)
            headers = response.headers
    except urllib.error.HTTPError as exc:
        raise FetchError(
            f"cannot download {url}: HTTP {exc.code} {exc.reason}",
            url=url,
            status=exc.code,
            hint=_status_hint(exc.code),
        ) from None
    except urllib.error.URLError as exc:
        raise FetchError(
            f"cannot download {url}: {exc.reason}",
            url=url,
            hint="check the URL and that this machine can reach it",
        ) from None
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        raise FetchError(
            f"cannot download {url}: {exc}",
            url=url,
            hint=f"the server did not answer within {timeout:g}s or dropped the "
            "connection; retry, or raise the timeout",
        ) from None
    if expected is not None and digest != expected:
        path.unlink()
        raise ChecksumMismatch(url, expected, digest)
    return FetchedFile(path, _filename(url, headers), _mtime(headers), digest)


def _parse_checksum(url: str, checksum: str | None) -> tuple[str, Digest | None]:
    if checksum is None:
        return "sha256", None
    algorithm, _, hexdigest = checksum.partition(":")
    if _HEX_LENGTHS.get(algorithm) != len(hexdigest):
        raise FetchError(
            f"ADD --checksum={checksum} for {url} is not a digest",
            url=url,
            hint="write it as --checksum=sha256:<64 hex digits>",
        )
    try:
        return algorithm, Digest(checksum.lower())
    except ValueError:
        raise FetchError(
            f"ADD --checksum={checksum} for {url} is not a digest",
            url=url,
            hint="write it as --checksum=sha256:<64 hex digits>",
        ) from None


def _store(url: str, response: Any, dest_dir: Path, algorithm: str) -> tuple[Digest, Path]:
    """Copy the body into a fresh file in dest_dir, hashing it; the file is removed on error."""
    hasher = hashlib.new(algorithm)
    fd, name = tempfile.mkstemp(prefix=".fetch-", dir=dest_dir)
    path = Path(name)
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := response.read(_CHUNK):
                hasher.update(chunk)
                out.write(chunk)
                size += len(chunk)
        _check_length(url, response, size)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Digest.from_hash(hasher), path


def _check_length(url: str, response: Any, size: int) -> None:
    # http.client notices most short bodies itself; this also covers a server that closes the
    # connection early on a response it did not mark as chunked
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) != size:
        raise FetchError(
            f"cannot download {url}: got {size} bytes, the server announced {declared}",
            url=url,
            status=response.status,
            hint="the connection was cut; retry",
        )


def _filename(url: str, headers: email.message.Message) -> str:
    disposition = headers.get_param("filename", header="Content-Disposition")
    if isinstance(disposition, tuple):  # RFC 2231 form: (charset, language, value)
        disposition = email.utils.collapse_rfc2231_value(disposition)
    if isinstance(disposition, str) and disposition and not disposition.endswith("/"):
        # only the last component: a server must not be able to pick a directory
        name = posixpath.basename(disposition.replace("\\", "/"))
        if name not in ("", ".", ".."):
            return name
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    name = posixpath.basename(path.rstrip("/")) if path not in ("", "/") else ""
    return name if name not in ("", ".", "..") else "download"


def _mtime(headers: email.message.Message) -> int | None:
    value = headers.get("Last-Modified")
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # a malformed date is ignored, as Go's http.ParseTime failing would be
    if when.tzinfo is None:  # "-0000" zone: HTTP dates are always UTC
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return "the server refused access; the URL may need to be public or pre-signed"
    if status == 404:
        return "check the URL; the file may have moved"
    if status >= 500:
        return "the server failed; retry later"
    return "check the URL"
