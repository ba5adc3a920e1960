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
from pathlib import Path
from typing import TYPE_CHECKING

from layerbuild.digest import Digest
from layerbuild.errors import BlobNotFound, ImageFormatError
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Index, Manifest
from layerbuild.store import layerentries, layermtimes, tarindex
from layerbuild.store.blockcache import BlockCache
from layerbuild.store.cacheindex import CacheEntry, CacheIndex
from layerbuild.store.images import sniff_media_type
from layerbuild.store.layers import LayerSnapshots, remove_tree
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
        self.layers: dict[Digest, Descriptor] = {}  # the layer blobs among `blobs`

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
                self.layers.update((layer.digest, layer) for layer in manifest.layers)
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


@dataclass(frozen=True)
class ImageBlobs:
    """What one image (a manifest or an index) keeps alive, by the rules gc marks with."""

    blobs: frozenset[Digest]  # the manifest(s), config(s) and layers
    layers: tuple[Descriptor, ...]  # the layer blobs among them


def image_blobs(store: Store, desc: Descriptor) -> ImageBlobs:
    """The blobs gc keeps for the image `desc` (its manifest or index) alone."""
    marker = _Marker(store)
    marker.mark(desc.digest, desc.media_type)
    layers = tuple(marker.layers[d] for d in sorted(marker.layers))
    return ImageBlobs(frozenset(marker.blobs), layers)


def cached_layers(store: Store) -> set[Digest]:
    """The layer blobs the build cache records name."""
    return {
        record.layer.digest
        for _, record in CacheIndex(store.root).records()
        if record.layer is not None
    }


@dataclass(frozen=True)
class GcPlan:
    """What a collect would remove, with the bytes each frees (`tree_size` for directories)."""

    blobs: tuple[tuple[Digest, int], ...]
    chains: tuple[tuple[str, int], ...]  # merged snapshots (snapshots.py)
    layer_snapshots: tuple[tuple[Path, int], ...]  # per-layer snapshots (layers.py)

    @property
    def freed(self) -> int:
        return sum(size for _, size in (*self.blobs, *self.chains, *self.layer_snapshots))


def plan_collect(
    store: Store, *, extra_roots: Iterable[Digest] = (), keep_cache: bool = True
) -> GcPlan:
    """What `collect` with the same arguments would remove now; removes nothing. Without the
    store lock (as `layerbuild df` calls it) a build may change the answer before gc runs."""
    marker = _Marker(store)
    for desc in [*store.refs.list().values(), *store.refs.unnamed()]:
        marker.mark(desc.digest, desc.media_type)
    records = [r for _, r in CacheIndex(store.root).records()] if keep_cache else []
    cache = {r.layer.digest for r in records if r.layer is not None}
    for digest in [*live_roots(store.root), *extra_roots, *cache]:
        marker.mark(digest)
    blobs = []
    for digest in store.content.digests():
        if digest not in marker.blobs:
            with contextlib.suppress(BlobNotFound):
                blobs.append((digest, store.content.size(digest)))
    chains = tuple(
        (chain, tree_size(store.snapshots.path(chain)))
        for chain in store.snapshots.list()
        if chain not in marker.chains
    )
    keep = marker.diff_ids | {r.layer.diff_id.hex for r in records if r.layer is not None}
    layer_dirs = tuple((p, tree_size(p)) for p in LayerSnapshots(store.root).unneeded(keep))
    return GcPlan(tuple(sorted(blobs)), chains, layer_dirs)


def collect(
    store: Store,
    *,
    extra_roots: Iterable[Digest] = (),
    timeout: float = DEFAULT_TIMEOUT,
    keep_cache: bool = True,
) -> tuple[list[Digest], int]:
    """Remove unreferenced blobs and snapshots; returns (removed blobs, bytes freed)."""
    with store_lock(store.root, timeout=timeout), refs_lock(store.root, timeout=timeout):
        # planned under the lock: a build that recorded a step has finished (or waits for us)
        plan = plan_collect(store, extra_roots=extra_roots, keep_cache=keep_cache)
        removed: list[Digest] = []
        freed = 0
        for digest, size in plan.blobs:
            if store.content.delete(digest):
                removed.append(digest)
                freed += size
        for chain, size in plan.chains:
            if store.snapshots.remove(chain):
                freed += size
        for path, size in plan.layer_snapshots:
            remove_tree(path)
            freed += size
        if plan.layer_snapshots:
            layermtimes.forget(store.root, LayerSnapshots(store.root).layer_hexes())
        if removed:
            with BlockCache(store.blocks_db, store.content.path) as blocks:
                blocks.forget_blobs(removed)
            layerentries.forget(store.root, removed)
            tarindex.forget(store, removed)
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
