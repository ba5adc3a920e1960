"""Download the source of `ADD <url> <dest>`: stream to disk, hash on the way, verify.

Docker's rules for remote ADD sources (BuildKit `source/http`), which this follows:

- the file name is the Content-Disposition `filename` if the server sends one (its last path
  component only), else the last component of the URL's path, else `download`;
- the file's mtime is the Last-Modified header when present;
- `ADD --checksum=sha256:<hex>` must match the content, or the build fails;
- remote files are never unpacked and get mode 0600 (the caller applies both).

The HTTP itself is registry/download.py over the registry's transport (one HTTP stack):
redirects followed only to http and https URLs, proxies from the environment (`https_proxy`,
`no_proxy`, ...) as urllib reads them, TLS verified against the system CA store, and retries
with backoff on connection errors, 429, 5xx and bodies cut short.
"""

from __future__ import annotations

import email.message
import email.utils
import hashlib
import os
import posixpath
import tempfile
import urllib.parse
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import BinaryIO

from layerbuild.digest import Digest
from layerbuild.errors import ChecksumMismatch, FetchError
from layerbuild.registry.download import SCHEMES, download
from layerbuild.registry.options import RegistryOptions

__all__ = ["ChecksumMismatch", "FetchError", "FetchedFile", "fetch_url"]

_USER_AGENT = "layerbuild (ADD)"
_HEX_LENGTHS = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True)
class FetchedFile:
    path: Path  # where the content was written (a unique name inside dest_dir)
    filename: str  # the name Docker gives the file in the image
    mtime: int | None  # seconds since the epoch, from Last-Modified; None if not sent
    digest: Digest  # of the content, with the --checksum algorithm (sha256 by default)


def fetch_url(
    url: str,
    dest_dir: Path,
    *,
    checksum: str | None = None,
    timeout: float = 60,
    retries: int = 4,
    backoff: float = 0.5,
) -> FetchedFile:
    """Download `url` into a new file in `dest_dir`; FetchError on any failure (nothing left).
    `retries` more attempts on a failure worth another, `backoff` seconds before the first."""
    if urllib.parse.urlsplit(url).scheme.lower() not in SCHEMES:
        raise FetchError(
            f"cannot download {url}: only http and https URLs are supported",
            url=url,
            hint="for a local file, give a path in the build context",
        )
    algorithm, expected = _parse_checksum(url, checksum)
    options = RegistryOptions(retries=retries, backoff=backoff, timeout=timeout)
    fd, name = tempfile.mkstemp(prefix=".fetch-", dir=dest_dir)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            sink = _HashingFile(out, algorithm)
            got = download(url, sink, options, {"User-Agent": _USER_AGENT})
    except OSError as exc:  # the file's, not the server's: not retried, reported as before
        path.unlink(missing_ok=True)
        raise FetchError(
            f"cannot download {url}: {exc}",
            url=url,
            hint=f"the server did not answer within {timeout:g}s or dropped the "
            "connection; retry, or raise the timeout",
        ) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    digest = sink.digest()
    if expected is not None and digest != expected:
        path.unlink()
        raise ChecksumMismatch(url, expected, digest)
    return FetchedFile(path, _filename(url, got.headers), _mtime(got.headers), digest)


class _HashingFile:
    """The download's sink: the file, and the digest of what went into it."""

    def __init__(self, out: BinaryIO, algorithm: str) -> None:
        self._out = out
        self._algorithm = algorithm
        self._hasher = hashlib.new(algorithm)

    def write(self, data: bytes, /) -> None:
        self._hasher.update(data)
        self._out.write(data)

    def reset(self) -> None:
        self._out.seek(0)
        self._out.truncate()
        self._hasher = hashlib.new(self._algorithm)

    def digest(self) -> Digest:
        return Digest.from_hash(self._hasher)


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
