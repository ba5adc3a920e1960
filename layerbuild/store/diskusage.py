"""`layerbuild df`: what the store holds on disk, per image and per part, read from the store.

Bytes are apparent sizes (`st_size`, as `du --apparent-size` counts them) of everything in the
store but directories, each hard-linked file once; directories are left out because their
size is the file system's choice, not the store's. With that, the parts add up exactly to the
store (the "other" part takes what no named part claims: index.json, locks, ingests, the
scratch directories of running builds).

What gc would free comes from gc's own plan (gc.plan_collect), not from a copy of its rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from layerbuild.digest import Digest
from layerbuild.image.descriptor import Descriptor
from layerbuild.store import images as store_images
from layerbuild.store.diffsizes import diff_sizes
from layerbuild.store.gc import cached_layers, image_blobs, plan_collect
from layerbuild.store.layout import Store
from layerbuild.store.sharing import (
    BlobRoles,
    BlobUse,
    ImageEntry,
    ImageUsage,
    SharedLayer,
    Sizes,
    combined,
    share,
    tally,
)
from layerbuild.store.snapshots import tree_files, tree_size


@dataclass(frozen=True)
class DiskUsage:
    images: tuple[ImageUsage, ...]
    shared_layers: tuple[SharedLayer, ...]
    images_total: Sizes  # the listed images together, each blob once
    parts: dict[str, int]  # sharing.CATEGORIES key -> bytes
    total: int  # sum of the parts: the store's bytes
    prune_frees: int  # what `layerbuild prune` would free now
    cache_prune_all_frees: int  # what `layerbuild cache prune --all` would free now


def disk_usage(store: Store, names: Sequence[str] = ()) -> DiskUsage:
    """The store's usage; with `names`, only those images are listed (sharing still counts
    every image of the store)."""
    entries = _image_entries(store)
    shown = [store_images.resolve(store, n).digest for n in names] if names else None
    usages, layers = share(entries, shown)
    wanted = set(shown) if shown is not None else {e.digest for e in entries}
    roles = BlobRoles(
        frozenset(b.digest.hex for e in entries for b in e.blobs),
        frozenset(d.hex for d in cached_layers(store)),
    )
    keep_cache = plan_collect(store).freed
    no_cache = plan_collect(store, keep_cache=False).freed + tree_size(store.cache_mounts_dir)
    # last: diff_sizes may have just written its memo, and the walk must see it
    parts = tally(_store_files(store.root), roles)
    return DiskUsage(
        images=usages,
        shared_layers=layers,
        images_total=combined(e for e in entries if e.digest in wanted),
        parts=parts,
        total=sum(parts.values()),
        prune_frees=keep_cache,
        cache_prune_all_frees=no_cache,
    )


def _image_entries(store: Store) -> list[ImageEntry]:
    """Every image of index.json (named or not), one entry per manifest or index digest."""
    descs: dict[Digest, Descriptor] = {}
    names: dict[Digest, list[str]] = {}
    for name, desc in sorted(store.refs.list().items()):
        descs.setdefault(desc.digest, desc)
        names.setdefault(desc.digest, []).append(name)
    for desc in store.refs.unnamed():
        descs.setdefault(desc.digest, desc)
    needs = {digest: image_blobs(store, desc) for digest, desc in descs.items()}
    layer_digests = {layer.digest for need in needs.values() for layer in need.layers}
    unpacked = diff_sizes(store, sorted(layer_digests))
    entries = []
    for digest, need in needs.items():
        blobs = tuple(_use(store, d, d in layer_digests, unpacked) for d in sorted(need.blobs))
        present = tuple(b for b in blobs if b is not None)
        entries.append(ImageEntry(digest, tuple(names.get(digest, ())), present))
    return entries


def _use(store: Store, digest: Digest, layer: bool, unpacked: dict[Digest, int]) -> BlobUse | None:
    """The blob as the image uses it, or None when it is not in the store (nothing on disk)."""
    path = store.content.path(digest)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    return BlobUse(digest, Sizes(size, unpacked.get(digest, size) if layer else size), layer)


def _store_files(root: Path) -> Iterable[tuple[str, int]]:
    """(path relative to `root`, apparent bytes) of every file under it, hard links once."""
    seen: set[tuple[int, int]] = set()
    prefix = len(str(root)) + 1
    for path, st in tree_files(root):
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        yield path[prefix:], st.st_size
