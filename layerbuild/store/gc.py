"""Garbage collection of the store: mark from names and live roots, sweep everything else.

Marked (kept): every image a name in index.json points to (an index keeps its manifests, a
manifest its config and layers), entries of index.json without a name, the digests listed in
GC roots of live processes (``roots/``), and `extra_roots` (e.g. layers the build cache still
refers to). Swept: every other blob, and every snapshot whose chain is not a prefix of a kept
image's layers.

collect() holds the store lock exclusive, which running builds hold shared: gc waits for them
(or fails with the lock's message), so it never deletes what a build is writing or reading.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from layerbuild.digest import Digest
from layerbuild.errors import ImageFormatError
from layerbuild.image import mediatypes as mt
from layerbuild.image.manifest import Index, Manifest
from layerbuild.store.content import BlobNotFound
from layerbuild.store.images import sniff_media_type
from layerbuild.store.locking import DEFAULT_TIMEOUT, live_roots, refs_lock, store_lock
from layerbuild.store.snapshots import EMPTY, chain_ids, tree_size

if TYPE_CHECKING:
    from layerbuild.store.layout import Store

_SNIFF_LIMIT = 4 << 20


class _Marker:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.blobs: set[Digest] = set()
        self.chains: set[str] = {EMPTY}

    def mark(self, digest: Digest, media_type: str | None = None) -> None:
        """Keep `digest` and, when it is a manifest or index, everything it refers to."""
        if digest in self.blobs:
            return
        self.blobs.add(digest)
        content = self.store.content
        if not content.has(digest) or content.size(digest) > _SNIFF_LIMIT:
            return
        if media_type not in mt.MANIFESTS and media_type not in mt.INDEXES:
            media_type = None
        try:
            data = content.read_bytes(digest)
            media_type = media_type or sniff_media_type(data)
            if media_type in mt.INDEXES:
                for m in Index.from_bytes(data).manifests:
                    self.mark(m.digest, m.media_type)
            elif media_type in mt.MANIFESTS:
                manifest = Manifest.from_bytes(data, media_type)
                self.blobs.add(manifest.config.digest)
                self.blobs.update(layer.digest for layer in manifest.layers)
                self.chains.update(chain_ids(manifest.layers))
        except (ImageFormatError, BlobNotFound):
            # a broken image keeps what it names; gc is no place to fail on it
            return


def collect(
    store: Store, *, extra_roots: Iterable[Digest] = (), timeout: float = DEFAULT_TIMEOUT
) -> tuple[list[Digest], int]:
    """Remove unreferenced blobs and snapshots; returns (removed blobs, bytes freed)."""
    with store_lock(store.root, timeout=timeout), refs_lock(store.root, timeout=timeout):
        marker = _Marker(store)
        for desc in [*store.refs.list().values(), *store.refs.unnamed()]:
            marker.mark(desc.digest, desc.media_type)
        for digest in [*live_roots(store.root), *extra_roots]:
            marker.mark(digest)
        removed: list[Digest] = []
        freed = 0
        for digest in list(store.content.digests()):
            if digest in marker.blobs:
                continue
            with contextlib.suppress(BlobNotFound):
                size = store.content.size(digest)
                if store.content.delete(digest):
                    removed.append(digest)
                    freed += size
        for chain in store.snapshots.list():
            if chain not in marker.chains:
                freed += tree_size(store.snapshots.path(chain))
                store.snapshots.remove(chain)
        store.snapshots.clean_stale()
        store.content.clean_stale_ingests()
    return sorted(removed), freed
