"""Garbage collection of the store: mark from names and live roots, sweep everything else.

Marked (kept): every image a name in index.json points to (an index keeps its manifests, a
manifest its config and layers), entries of index.json without a name, the digests listed in
GC roots of live processes (``roots/``), the layers the build cache records name (unless
``keep_cache=False``: a cached layer is what makes the next build fast, and only `cache prune`
decides to give it up), and `extra_roots`. Swept: every other blob, and every snapshot whose
chain is not a prefix of a kept image's layers.

collect() holds the store lock exclusive, which running builds hold shared: gc waits for them
(or fails with the lock's message), so it never deletes what a build is writing or reading.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from layerbuild.digest import Digest
from layerbuild.errors import BlobNotFound, ImageFormatError
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.manifest import Index, Manifest
from layerbuild.store import layerentries
from layerbuild.store.blockcache import BlockCache
from layerbuild.store.cacheindex import CacheEntry, CacheIndex
from layerbuild.store.images import sniff_media_type
from layerbuild.store.layers import LayerSnapshots
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
        self.diff_ids: set[str] = set()  # hex, for the per-layer RUN snapshots

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
                self._diff_ids(manifest.config.digest)
                self.blobs.update(layer.digest for layer in manifest.layers)
                self.chains.update(chain_ids(manifest.layers))
        except (ImageFormatError, BlobNotFound):
            # a broken image keeps what it names; gc is no place to fail on it
            return

    def _diff_ids(self, config: Digest) -> None:
        content = self.store.content
        if content.has(config) and content.size(config) <= _SNIFF_LIMIT:
            parsed = ImageConfig.from_bytes(content.read_bytes(config))
            self.diff_ids.update(d.hex for d in parsed.diff_ids)


def tagged_blobs(store: Store) -> set[Digest]:
    """Every blob an image in index.json needs (named or not); read without locking."""
    marker = _Marker(store)
    for desc in [*store.refs.list().values(), *store.refs.unnamed()]:
        marker.mark(desc.digest, desc.media_type)
    return marker.blobs


def cached_layers(store: Store) -> set[Digest]:
    """The layer blobs the build cache records name."""
    return {
        record.layer.digest
        for _, record in CacheIndex(store.root).records()
        if record.layer is not None
    }


def collect(
    store: Store,
    *,
    extra_roots: Iterable[Digest] = (),
    timeout: float = DEFAULT_TIMEOUT,
    keep_cache: bool = True,
) -> tuple[list[Digest], int]:
    """Remove unreferenced blobs and snapshots; returns (removed blobs, bytes freed)."""
    with store_lock(store.root, timeout=timeout), refs_lock(store.root, timeout=timeout):
        marker = _Marker(store)
        for desc in [*store.refs.list().values(), *store.refs.unnamed()]:
            marker.mark(desc.digest, desc.media_type)
        # read under the lock: a build that recorded a step has finished (or waits for us)
        cache = cached_layers(store) if keep_cache else set()
        for digest in [*live_roots(store.root), *extra_roots, *cache]:
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
        keep = marker.diff_ids | {
            record.layer.diff_id.hex
            for _, record in (CacheIndex(store.root).records() if keep_cache else ())
            if record.layer is not None
        }
        freed += LayerSnapshots(store.root).prune(keep)
        if removed:
            with BlockCache(store.blocks_db, store.content.path) as blocks:
                blocks.forget_blobs(removed)
            layerentries.forget(store.root, removed)
        store.snapshots.clean_stale()
        store.content.clean_stale_ingests()
    return sorted(removed), freed


# -- the build cache: how much it holds, and giving some of it up --------------------------------


@dataclass(frozen=True)
class CacheUsage:
    records: int
    layers: int  # distinct cached layer blobs present in the store
    total: int  # their bytes
    reclaimable: int  # bytes of those no tagged image needs


def cache_usage(store: Store) -> CacheUsage:
    """What the cache records hold: the layers they name, and how much no tagged image needs."""
    entries = CacheIndex(store.root).entries()
    tagged = tagged_blobs(store)
    sizes = _layer_sizes(store, entries)
    reclaimable = sum(size for digest, size in sizes.items() if digest not in tagged)
    return CacheUsage(len(entries), len(sizes), sum(sizes.values()), reclaimable)


def _layer_sizes(store: Store, entries: Iterable[CacheEntry]) -> dict[Digest, int]:
    sizes: dict[Digest, int] = {}
    for entry in entries:
        layer = entry.record.layer
        if layer is not None and layer.digest not in sizes:
            with contextlib.suppress(BlobNotFound):
                sizes[layer.digest] = store.content.size(layer.digest)
    return sizes


@dataclass(frozen=True)
class PruneResult:
    records: int  # cache records removed
    blobs: int  # blobs removed by the gc that followed
    freed: int  # bytes


def prune_cache(
    store: Store,
    *,
    everything: bool = False,
    keep_storage: int | None = None,
    older_than: float | None = None,
    now: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> PruneResult:
    """Remove cache records, least recently used first, then gc with the rest as roots.

    Candidates are the records whose layer no tagged image needs or whose blob is gone (all
    records with `everything`), narrowed to those last used before `now - older_than`. With
    `keep_storage`, only as many (oldest first) as needed to bring the bytes of cached layers
    no tagged image needs down to `keep_storage`. A tagged image never loses a blob: gc marks
    from the names first.
    """
    index = CacheIndex(store.root)
    entries = index.entries()
    tagged = tagged_blobs(store)
    sizes = _layer_sizes(store, entries)

    def holds_space(e: CacheEntry) -> bool:
        layer = e.record.layer
        return layer is not None and (layer.digest not in tagged or layer.digest not in sizes)

    candidates = [e for e in entries if everything or holds_space(e)]
    if older_than is not None:
        cutoff = (time.time() if now is None else now) - older_than
        candidates = [e for e in candidates if e.last_used < cutoff]
    candidates.sort(key=lambda e: e.last_used)
    doomed = candidates
    if keep_storage is not None:
        doomed = _over_budget(entries, candidates, sizes, tagged, keep_storage)
    for entry in doomed:
        index.remove(entry.path)
    removed, freed = collect(store, timeout=timeout)
    if everything:  # RUN --mount=type=cache directories are cache too
        mounts = store.cache_mounts_dir
        if mounts.is_dir():
            with store_lock(store.root, timeout=timeout):
                freed += tree_size(mounts)
                shutil.rmtree(mounts, ignore_errors=True)
    return PruneResult(len(doomed), len(removed), freed)


def _over_budget(
    entries: list[CacheEntry],
    candidates: list[CacheEntry],
    sizes: dict[Digest, int],
    tagged: set[Digest],
    budget: int,
) -> list[CacheEntry]:
    """The oldest candidates whose removal brings the untagged cached bytes within `budget`."""
    users: dict[Digest, int] = {}
    for entry in entries:
        if entry.record.layer is not None:
            users[entry.record.layer.digest] = users.get(entry.record.layer.digest, 0) + 1
    held = sum(size for digest, size in sizes.items() if digest not in tagged)
    doomed = []
    for entry in candidates:
        if held <= budget:
            break
        doomed.append(entry)
        layer = entry.record.layer
        if layer is None:
            continue
        users[layer.digest] -= 1
        if users[layer.digest] == 0 and layer.digest not in tagged:
            held -= sizes.get(layer.digest, 0)  # its last record: gc frees the blob
    return doomed
