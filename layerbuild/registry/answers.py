"""What the registry's answers mean: a fetched manifest checked against what was asked for, an
unexpected status turned into an error that says what to do, and the byte ranges a resumed
download or upload is answered with.

Apart from client.py, which sends the requests, so that both stay readable; nothing here sends.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any

from layerbuild.digest import Digest, is_digest, sha256_bytes
from layerbuild.errors import RegistryError, RegistryUnavailable
from layerbuild.image import mediatypes as mt
from layerbuild.image.descriptor import Descriptor
from layerbuild.registry.transport import (
    Response,
    redact_url,
    retry_after_seconds,
)

_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
_MAX_MANIFEST = 4 << 20


@dataclass(frozen=True, slots=True)
class FetchedManifest:
    """A manifest or index as the registry sent it; `data` is what `digest` names."""

    data: bytes
    media_type: str
    digest: Digest

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.data))


def checked_manifest(
    registry: str, repository: str, reference: str, data: bytes, media_type: str, resp: Response
) -> FetchedManifest:
    where = f"{registry}/{repository}:{reference}"
    if media_type in _SCHEMA1:
        raise RegistryError(
            f"{where} is a Docker v2 schema 1 image, which layerbuild does not read",
            hint="re-push it with a current docker or skopeo (schema 2 / OCI)",
        )
    if len(data) > _MAX_MANIFEST:
        raise RegistryError(f"the manifest of {where} is larger than {_MAX_MANIFEST} bytes")
    digest = sha256_bytes(data)
    expected = reference if is_digest(reference) else resp.header("Docker-Content-Digest")
    if expected and expected.startswith("sha256:") and expected != digest:
        raise RegistryError(
            f"the manifest of {where} has digest {digest}, but {expected} was expected",
            hint="the registry or a proxy altered it; retry, or pull from elsewhere",
        )
    if media_type not in mt.MANIFESTS and media_type not in mt.INDEXES:
        media_type = _declared_media_type(data) or media_type
    if media_type not in mt.MANIFESTS and media_type not in mt.INDEXES:
        raise RegistryError(f"{where} is a {media_type or 'untyped'} document, not an image")
    return FetchedManifest(data, media_type, digest)


def _declared_media_type(data: bytes) -> str | None:
    try:
        obj: Any = json.loads(data)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("mediaType"), str):
        return str(obj["mediaType"])
    return mt.OCI_INDEX if "manifests" in obj else mt.OCI_MANIFEST if "layers" in obj else None


def _registry_message(body: bytes) -> str:
    """The first error message of a distribution error body ({"errors": [...]})."""
    try:
        obj: Any = json.loads(body)
        first = obj["errors"][0]
        return f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return ""


def _error_body(resp: Response) -> bytes:
    """An error answer's body, for its detail only: a body lost on the way leaves the status."""
    if resp.status == 404 and resp.header("Content-Length") == "0":
        return b""
    try:
        return resp.read()
    except (OSError, http.client.HTTPException):
        return b""


def status_error(
    registry: str, resp: Response, what: str, repository: str | None, user: str | None
) -> RegistryError:
    """A RegistryError for an unexpected status, saying what to do about it."""
    status = resp.status
    detail = _registry_message(_error_body(resp))
    target = f"{registry}/{repository}" if repository else registry
    said = f" ({detail})" if detail else ""
    who = f"user {user!r}" if user else "anonymous access"
    if status == 401:
        return RegistryError(
            f"cannot {what} {target}: the registry asks for authentication{said}",
            status=401,
            hint=f"run `layerbuild login {registry}`; with {who} the registry said no",
        )
    if status == 403:
        return RegistryError(
            f"cannot {what} {target}: access denied for {who}{said}",
            status=403,
            hint="check that this account may access the repository (push needs write access)",
        )
    if status == 404:
        return RegistryError(
            f"cannot {what} {target}: not found{said}",
            status=404,
            hint="check the repository name and tag (names are case-sensitive and lower case)",
        )
    if status >= 500 or status == 429:
        return RegistryUnavailable(
            f"cannot {what} {target}: the registry answered {status}{said} "
            f"({redact_url(resp.url)})",
            status=status,
            hint="the registry is overloaded or failing; retry later",
            retry_after=retry_after_seconds(resp.header("Retry-After")),
        )
    return RegistryError(
        f"cannot {what} {target}: the registry answered {status}{said}", status=status
    )


def check_content_range(resp: Response, offset: int, desc: Descriptor) -> None:
    """A 206 must start where we asked, or the bytes would land in the wrong place."""
    value = resp.header("Content-Range") or ""
    start = value.removeprefix("bytes ").split("-", 1)[0].strip()
    if start != str(offset):
        resp.close()
        raise RegistryError(
            f"resuming blob {desc.digest}: asked for bytes from {offset}, got {value!r}",
            hint="a proxy between here and the registry mangles Range requests; retry",
        )


def range_end(header: str | None, default: int) -> int:
    """Bytes held by an upload from its ``Range: 0-<last>`` header (exclusive end)."""
    if not header or "-" not in header:
        return default
    last = header.rsplit("-", 1)[1].strip()
    return int(last) + 1 if last.isdigit() else default
