"""The distribution API (OCI distribution spec v1.1) for one registry.

Requests and what they answer, as the Distribution registry implements them:

- ``GET /v2/``: 200, or 401 with the auth challenge (see auth.py);
- ``HEAD|GET /v2/<name>/blobs/<digest>``: 200 (GET may redirect to storage, and honours
  ``Range: bytes=N-`` with 206, which is how a dropped download resumes);
- ``GET|PUT /v2/<name>/manifests/<tag|digest>``: manifests and indexes, OCI or Docker;
- ``POST /v2/<name>/blobs/uploads/[?mount=<digest>&from=<repo>]``: 201 when the blob was
  mounted from another repository, else 202 with the upload's ``Location``;
- ``PUT <location>?digest=<d>`` with the whole blob (monolithic), or ``PATCH <location>`` per
  chunk with ``Content-Range: start-end`` (each answers a new ``Location`` and ``Range``), then
  ``PUT <location>?digest=<d>`` with no body; ``GET <location>`` reports how much of an upload
  the registry holds, so a chunked upload resumes after a dropped connection.

Errors: 401, 403 and 404 become RegistryError with the status and what to do; connection
failures and repeated 5xx become RegistryUnavailable (transport.py). Every response but a blob
download is read whole inside the transport's retry policy (``read=True``), so a cut or reset
manifest, token or error body is retried like a failed connect; blob downloads resume by Range.
"""

from __future__ import annotations

import http.client
import time
import urllib.parse
from collections.abc import Callable
from typing import BinaryIO, Protocol

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.errors import RegistryError, RegistryUnavailable
from layerbuild.hosterrors import local_write_error
from layerbuild.image import mediatypes as mt
from layerbuild.image.descriptor import Descriptor
from layerbuild.registry import credentials
from layerbuild.registry.answers import (
    FetchedManifest,
    check_content_range,
    checked_manifest,
    range_end,
    status_error,
)
from layerbuild.registry.auth import Authenticator, repository_scope
from layerbuild.registry.credentials import Credentials
from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.transport import (
    RETRY_STATUSES,
    Response,
    Transport,
    unreachable,
    uses_plain_http,
)

MANIFEST_ACCEPT = ", ".join(
    [mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST]
)
_HUB_API = "registry-1.docker.io"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_OCTET = "application/octet-stream"

OpenBlob = Callable[[int, int], BinaryIO]  # (offset, length) -> a reader of that window
OnBytes = Callable[[int], None]


def _write_local(sink: Sink, chunk: bytes) -> None:
    """A failed write to the sink is the local disk's (a full store, say), never a dropped
    connection: as a HostError it passes fetch_blob's resume handler instead of being
    retried."""
    try:
        sink.write(chunk)
    except OSError as e:
        raise local_write_error(e) from None


class Sink(Protocol):
    def write(self, data: bytes) -> int: ...


def api_host(registry: str) -> str:
    """The host serving a registry's API (Docker Hub's is not docker.io)."""
    return _HUB_API if registry == credentials.DOCKER_HUB else registry


class RegistryClient:
    """Talks to one registry; share one between threads of a pull or push."""

    def __init__(
        self,
        registry: str,
        options: RegistryOptions | None = None,
        *,
        creds: Credentials | None = None,
        lookup_credentials: bool = True,
    ) -> None:
        self.registry = registry
        self.options = options or RegistryOptions()
        host = api_host(registry)
        scheme = "http" if uses_plain_http(host, self.options) else "https"
        self.base = f"{scheme}://{host}"
        self.transport = Transport(self.options)
        if creds is None and lookup_credentials:
            creds = credentials.lookup(registry)
        self.auth = Authenticator(registry, self.transport, creds)

    def __repr__(self) -> str:
        return f"RegistryClient({self.base!r}, user={self.auth.user!r})"

    def close(self) -> None:
        self.transport.close()

    # -- plumbing -----------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base + path

    def _request(
        self,
        method: str,
        path: str,
        scopes: tuple[str, ...],
        *,
        headers: dict[str, str] | None = None,
        body: bytes | Callable[[], BinaryIO] | None = None,
        retry: bool = True,
        read: bool = True,
    ) -> Response:
        """Send with authorization; after a 401 learn the challenge and send once more.

        `read`: the body is read inside the retry policy (False only for blob downloads).
        """
        url = self._url(path)
        for attempt in (0, 1):
            all_headers = dict(headers or {})
            auth = self.auth.header(scopes)
            if auth is not None:
                all_headers["Authorization"] = auth
            resp = self.transport.request(
                method, url, headers=all_headers, body=body, retry=retry, read=read
            )
            if method in ("GET", "HEAD") and resp.status in _REDIRECTS:
                return self._follow(resp, method, url, all_headers, read)
            if resp.status != 401 or attempt == 1:
                return resp
            try:
                learned = self.auth.unauthorized(resp.header("WWW-Authenticate"), scopes)
            except BaseException:
                resp.close()
                raise
            if not learned:
                return resp
            resp.close()
        raise AssertionError("unreachable: the second attempt returns")

    def _follow(
        self, resp: Response, method: str, url: str, headers: dict[str, str], read: bool
    ) -> Response:
        """Follow a GET's or HEAD's redirects (at most 5), as docker's client does: to storage
        for blobs, to a mirror or another port for anything. The registry's Authorization goes
        along only to the same host:port (a pre-signed storage URL must not get it)."""
        origin = urllib.parse.urlsplit(url).netloc
        for _ in range(5):
            if resp.status not in _REDIRECTS:
                return resp
            url = urllib.parse.urljoin(url, resp.header("Location") or "")
            resp.close()
            if urllib.parse.urlsplit(url).netloc != origin:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            resp = self.transport.request(method, url, headers=headers, read=read)
        return resp

    def _fail(self, resp: Response, what: str, repository: str | None) -> RegistryError:
        return status_error(self.registry, resp, what, repository, self.auth.user)

    # -- API ----------------------------------------------------------------------------------

    def ping(self) -> None:
        """Check that the registry answers the v2 API and that our credentials (if any) work."""
        resp = self._request("GET", "/v2/", ())
        if resp.status != 200:
            raise self._fail(resp, "log in to", None)
        resp.close()

    def get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        """A manifest or index by tag or digest; digests are verified."""
        scopes = (repository_scope(repository, "pull"),)
        resp = self._request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scopes,
            headers={"Accept": MANIFEST_ACCEPT},
        )
        if resp.status != 200:
            raise self._fail(resp, f"get manifest {reference} of", repository)
        data = resp.read()
        media_type = (resp.header("Content-Type") or "").split(";")[0].strip()
        return checked_manifest(self.registry, repository, reference, data, media_type, resp)

    def blob_size(self, repository: str, digest: Digest, *, push: bool = False) -> int | None:
        """The size of a blob the repository has, or None when it has not."""
        scopes = (repository_scope(repository, "pull,push" if push else "pull"),)
        resp = self._request("HEAD", f"/v2/{repository}/blobs/{digest}", scopes)
        resp.close()
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise self._fail(resp, f"check blob {digest.short} in", repository)
        length = resp.header("Content-Length")
        return int(length) if length and length.isdigit() else None

    def open_blob(self, repository: str, digest: Digest, offset: int = 0) -> Response:
        """GET a blob from `offset` (200 or 206), following redirects to storage."""
        scopes = (repository_scope(repository, "pull"),)
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        url = self._url(f"/v2/{repository}/blobs/{digest}")
        resp = self._request("GET", url, scopes, headers=headers, read=False)  # follows storage
        if resp.status == 404:
            raise RegistryError(
                f"cannot download blob {digest} from {self.registry}/{repository}: the "
                "registry answered 404 for a blob that a manifest it served names",
                status=404,
                hint="the registry lost a blob its manifest names (its storage is damaged, or "
                "the blob was deleted or garbage-collected); push the image to it again",
            )
        if resp.status not in (200, 206):
            raise self._fail(resp, f"download blob {digest.short} from", repository)
        return resp

    def fetch_blob(
        self, repository: str, desc: Descriptor, sink: Sink, on_bytes: OnBytes | None = None
    ) -> None:
        """Stream a blob into `sink`, resuming with Range requests after a dropped connection.

        The caller verifies the digest (the store's ingest does, at commit).
        """
        offset, drops = 0, 0
        while True:
            resp = self.open_blob(repository, desc.digest, offset)
            skip = offset if resp.status == 200 else 0  # the server ignored Range: skip ahead
            if resp.status == 200:
                offset = 0
            else:
                check_content_range(resp, offset, desc)
            try:
                for chunk in resp.stream():
                    if skip:
                        cut = min(skip, len(chunk))
                        chunk, skip, offset = chunk[cut:], skip - cut, offset + cut
                    if offset + len(chunk) > desc.size:
                        raise RegistryError(
                            f"blob {desc.digest} from {self.registry}/{repository} is larger "
                            f"than the {desc.size} bytes its descriptor says",
                            hint="the registry or the manifest is corrupt; report it",
                        )
                    _write_local(sink, chunk)
                    offset += len(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
            except (OSError, http.client.HTTPException) as e:
                drops = self._dropped(drops, "GET", resp.url, e)
                continue
            if offset >= desc.size:
                return
            drops = self._dropped(drops, "GET", resp.url, ConnectionError("body cut short"))

    def _dropped(
        self,
        drops: int,
        method: str,
        url: str,
        err: BaseException,
        retry_after: str | None = None,
    ) -> int:
        if drops >= self.options.retries:
            raise unreachable(method, url, err) from err
        time.sleep(self.transport.retry_delay(drops, retry_after))
        return drops + 1

    def start_upload(self, repository: str, mount: tuple[Digest, str] | None = None) -> str | None:
        """Open an upload session (its URL), or None when `mount` (digest, from) was mounted."""
        scopes: tuple[str, ...] = (repository_scope(repository, "pull,push"),)
        path = f"/v2/{repository}/blobs/uploads/"
        if mount is not None:
            digest, source = mount
            scopes += (repository_scope(source, "pull"),)
            path += "?" + urllib.parse.urlencode({"mount": str(digest), "from": source})
        resp = self._request("POST", path, scopes, body=b"")
        resp.close()
        if resp.status == 201 and mount is not None:
            return None
        if resp.status != 202 or not resp.header("Location"):
            raise self._fail(resp, "start a blob upload to", repository)
        return urllib.parse.urljoin(resp.url, resp.header("Location") or "")

    def upload_monolithic(
        self, repository: str, location: str, digest: Digest, size: int, open_blob: OpenBlob
    ) -> None:
        """Send the whole blob in one PUT and commit it."""
        headers = {"Content-Type": _OCTET, "Content-Length": str(size)}
        resp = self._request(
            "PUT",
            _with_digest(location, digest),
            (repository_scope(repository, "pull,push"),),
            headers=headers,
            body=lambda: open_blob(0, size),
            retry=False,  # a replayed PUT appends to a half-written upload: restart instead
        )
        resp.close()
        if resp.status != 201:
            raise self._fail(resp, f"upload blob {digest.short} to", repository)

    def upload_chunked(
        self,
        repository: str,
        location: str,
        digest: Digest,
        size: int,
        open_blob: OpenBlob,
        on_bytes: OnBytes | None = None,
    ) -> None:
        """PATCH the blob chunk by chunk, resuming from what the registry holds after a drop."""
        scopes = (repository_scope(repository, "pull,push"),)
        offset, drops = 0, 0
        while offset < size:
            n = min(self.options.chunk_size, size - offset)
            headers = {
                "Content-Type": _OCTET,
                "Content-Length": str(n),
                "Content-Range": f"{offset}-{offset + n - 1}",
            }
            start = offset
            try:
                resp = self._request(
                    "PATCH",
                    location,
                    scopes,
                    headers=headers,
                    body=lambda start=start, n=n: open_blob(start, n),  # type: ignore[misc]
                    retry=False,
                )
            except RegistryUnavailable as e:
                drops = self._dropped(drops, "PATCH", location, e)
                location, offset = self._upload_status(repository, location)
                continue
            resp.close()
            if resp.status in RETRY_STATUSES or resp.status >= 500:
                err = ConnectionError(f"the registry answered {resp.status}")
                wait = resp.header("Retry-After")
                drops = self._dropped(drops, "PATCH", location, err, wait)
                location, offset = self._upload_status(repository, location)
                continue
            if resp.status != 202:
                raise self._fail(resp, f"upload blob {digest.short} to", repository)
            location = urllib.parse.urljoin(resp.url, resp.header("Location") or location)
            offset = range_end(resp.header("Range"), start + n)
            if on_bytes is not None:
                on_bytes(offset - start)
        resp = self._request("PUT", _with_digest(location, digest), scopes, body=b"")
        resp.close()
        if resp.status != 201:
            raise self._fail(resp, f"commit blob {digest.short} to", repository)

    def _upload_status(self, repository: str, location: str) -> tuple[str, int]:
        """Where an interrupted upload stands: its current URL and how many bytes it holds."""
        resp = self._request("GET", location, (repository_scope(repository, "pull,push"),))
        resp.close()
        if resp.status != 204:
            raise self._fail(resp, "resume the blob upload to", repository)
        new_location = urllib.parse.urljoin(resp.url, resp.header("Location") or location)
        return new_location, range_end(resp.header("Range"), 0)

    def put_manifest(
        self, repository: str, reference: str, data: bytes, media_type: str
    ) -> Digest:
        """Upload a manifest or index under a tag or digest; returns its digest."""
        digest = sha256_bytes(data)
        resp = self._request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            (repository_scope(repository, "pull,push"),),
            headers={"Content-Type": media_type},
            body=data,
        )
        resp.close()
        if resp.status not in (200, 201):
            raise self._fail(resp, f"push manifest {reference} to", repository)
        echoed = resp.header("Docker-Content-Digest")
        if echoed and echoed != digest:
            raise RegistryError(
                f"registry {self.registry} stored manifest {reference} of {repository} as "
                f"{echoed}, but we sent {digest}",
                hint="the registry rewrote the manifest; it may not support this media type",
            )
        return digest


def _with_digest(location: str, digest: Digest) -> str:
    sep = "&" if urllib.parse.urlsplit(location).query else "?"
    return f"{location}{sep}digest={urllib.parse.quote(str(digest))}"
