"""Push an image (or index) from the store to a registry.

Per blob, several at a time: HEAD it on the target repository and skip it when present; else,
when the blob was seen in another repository of the same registry (sources.py), ask for a
cross-repository mount; else upload it, in one PUT up to ``chunk_threshold`` bytes and in
PATCH chunks above (a chunked upload resumes after a dropped connection from what the registry
holds). Manifests go last, children of an index before the index, so the registry never holds
a tag whose content is missing.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, cast

from layerbuild.errors import ImageFormatError, RegistryError, RegistryUnavailable
from layerbuild.image import mediatypes as mt
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Index, Manifest
from layerbuild.registry.client import OpenBlob, RegistryClient
from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.progress import DONE, EXISTS, MOUNTED, STARTED, ByteCounter, OnProgress
from layerbuild.registry.progress import TransferEvent as Event
from layerbuild.registry.reference import parse_reference
from layerbuild.registry.sources import BlobSources
from layerbuild.store.images import sniff_media_type
from layerbuild.store.layout import Store


def push(
    store: Store,
    desc: Descriptor,
    ref: str,
    *,
    insecure: Iterable[str] = (),
    options: RegistryOptions | None = None,
    on_progress: OnProgress | None = None,
) -> Descriptor:
    """Push the image or index `desc` to `ref` (a tag, or the digest it must have).

    Returns the descriptor of what the registry now holds under `ref`.
    """
    reference = parse_reference(ref)
    if reference.digest is not None and reference.digest != desc.digest:
        raise RegistryError(
            f"cannot push {desc.digest} as {ref}: a pushed manifest keeps its own digest",
            hint="push to a tag instead, e.g. name:1",
        )
    opts = (options or RegistryOptions()).with_insecure(tuple(insecure))
    client = RegistryClient(reference.registry, opts)
    pusher = _Pusher(store, client, reference.repository, on_progress)
    try:
        data, media_type = pusher.manifest_bytes(desc)
        if media_type in mt.INDEXES:
            for child in Index.from_bytes(data).manifests:
                child_data, child_type = pusher.manifest_bytes(child)
                pusher.push_image_blobs(child_data, child_type)
                client.put_manifest(reference.repository, child.digest, child_data, child_type)
        else:
            pusher.push_image_blobs(data, media_type)
        target = reference.tag or reference.digest or str(desc.digest)
        digest = client.put_manifest(reference.repository, target, data, media_type)
    finally:
        client.close()
    return Descriptor(media_type, digest, len(data), platform=desc.platform)


class _Pusher:
    def __init__(
        self,
        store: Store,
        client: RegistryClient,
        repository: str,
        on_progress: OnProgress | None,
    ) -> None:
        self.store = store
        self.client = client
        self.repository = repository
        self.on_progress = on_progress
        self.sources = BlobSources(store.sources_dir)

    def _emit(self, event: Event) -> None:
        if self.on_progress is not None:
            self.on_progress(event)

    def manifest_bytes(self, desc: Descriptor) -> tuple[bytes, str]:
        data = self.store.content.read_bytes(desc.digest)
        media_type = desc.media_type
        if media_type not in mt.MANIFESTS and media_type not in mt.INDEXES:
            media_type = sniff_media_type(data) or media_type
        if media_type not in mt.MANIFESTS and media_type not in mt.INDEXES:
            raise ImageFormatError(f"{desc.digest} is a {media_type}, not an image to push")
        return data, media_type

    def push_image_blobs(self, data: bytes, media_type: str) -> None:
        manifest = Manifest.from_bytes(data, media_type)
        blobs = list({b.digest: b for b in (manifest.config, *manifest.layers)}.values())
        for blob in blobs:
            if not self.store.content.has(blob.digest):
                raise RegistryError(
                    f"cannot push: blob {blob.digest} of the image is not in the local store",
                    hint="pull or rebuild the image so that all of its layers are local",
                )
        workers = max(1, min(self.client.options.parallel, len(blobs)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="push") as pool:
            for future in [pool.submit(self.push_blob, b) for b in blobs]:
                future.result()
        self.sources.record([b.digest for b in blobs], self.client.registry, self.repository)

    def push_blob(self, desc: Descriptor) -> None:
        """HEAD, then mount or upload one blob."""
        if self.client.blob_size(self.repository, desc.digest, push=True) is not None:
            self._emit(Event(EXISTS, desc.digest, desc.size))
            return
        location = self._try_mount(desc)
        if location == "":
            return
        self._emit(Event(STARTED, desc.digest, desc.size))
        self._upload(desc, location)
        self._emit(Event(DONE, desc.digest, desc.size, desc.size))

    def _try_mount(self, desc: Descriptor) -> str | None:
        """'' when mounted; an upload URL when the registry opened one instead; None."""
        for source in self.sources.repositories(desc.digest, self.client.registry):
            if source == self.repository:
                continue
            try:
                location = self.client.start_upload(self.repository, (desc.digest, source))
            except RegistryError as e:
                if e.status not in (401, 403, 404):
                    raise
                continue  # no read access to the source: upload instead
            if location is None:
                self._emit(Event(MOUNTED, desc.digest, desc.size, desc.size, source=source))
                return ""
            return location
        return None

    def _upload(self, desc: Descriptor, location: str | None) -> None:
        size = self.store.content.size(desc.digest)
        chunked = size > self.client.options.chunk_threshold
        path = self.store.content.path(desc.digest)
        retries = self.client.options.retries
        for attempt in range(retries + 1):
            try:
                location = location or self.client.start_upload(self.repository)
                assert location is not None  # start_upload without a mount opens a session
                if chunked:
                    counter = ByteCounter(desc.digest, size, self.on_progress)
                    self.client.upload_chunked(
                        self.repository, location, desc.digest, size, _opener(path), counter
                    )
                else:
                    self.client.upload_monolithic(
                        self.repository, location, desc.digest, size, _opener(path)
                    )
                return
            except RegistryError as e:
                # a monolithic PUT cannot be replayed into the same session; a session the
                # registry forgot (404 BLOB_UPLOAD_UNKNOWN) cannot be resumed: start afresh
                restart = e.status == 404 or (isinstance(e, RegistryUnavailable) and not chunked)
                if attempt >= retries or not restart:
                    raise
                location = None
                asked = e.retry_after if isinstance(e, RegistryUnavailable) else None
                time.sleep(self.client.transport.retry_delay(attempt, asked))


class _Window(io.RawIOBase):
    """Reads `length` bytes of a file from `offset`: the body of one PUT or PATCH."""

    def __init__(self, path: Path, offset: int, length: int) -> None:
        super().__init__()
        self._file = open(path, "rb")
        self._file.seek(offset)
        self._left = length

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = self._left if size < 0 else min(size, self._left)
        data = self._file.read(n) if n else b""
        self._left -= len(data)
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._file.close()
        super().close()


def _opener(path: Path) -> OpenBlob:
    def open_window(offset: int, length: int) -> BinaryIO:
        return cast(BinaryIO, _Window(path, offset, length))

    return open_window
