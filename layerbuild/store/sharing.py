"""The arithmetic of `layerbuild df`, on values only: which blobs images share, and which part
of the store each file belongs to. diskusage.py reads the store and calls these.

An image's *total* is the bytes of every blob it needs (manifests, configs, layers), each blob
once; *shared* the part of those blobs another listed image needs too, *unique* the rest (what
removing that image alone and running gc would give back, as `docker system df -v` defines
them). Uncompressed sizes count a layer by its diff size and other blobs as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from layerbuild.digest import Digest


@dataclass(frozen=True, slots=True)
class Sizes:
    compressed: int = 0  # bytes as stored
    uncompressed: int = 0  # layers counted unpacked (their diff size)

    def __add__(self, other: Sizes) -> Sizes:
        return Sizes(self.compressed + other.compressed, self.uncompressed + other.uncompressed)

    def __sub__(self, other: Sizes) -> Sizes:
        return Sizes(self.compressed - other.compressed, self.uncompressed - other.uncompressed)


@dataclass(frozen=True, slots=True)
class BlobUse:
    """One blob an image needs."""

    digest: Digest
    sizes: Sizes  # for a blob that is not a layer, both are its stored size
    layer: bool


@dataclass(frozen=True, slots=True)
class ImageEntry:
    """An image of the store (a manifest or index digest) with its names and blobs."""

    digest: Digest
    names: tuple[str, ...]  # empty for an entry of index.json without a name
    blobs: tuple[BlobUse, ...]


@dataclass(frozen=True, slots=True)
class ImageUsage:
    digest: Digest
    names: tuple[str, ...]
    layers: int
    total: Sizes
    shared: Sizes
    unique: Sizes


@dataclass(frozen=True, slots=True)
class SharedLayer:
    digest: Digest
    sizes: Sizes
    images: tuple[Digest, ...]  # the images that need it, two or more


def share(
    images: Sequence[ImageEntry], shown: Iterable[Digest] | None = None
) -> tuple[tuple[ImageUsage, ...], tuple[SharedLayer, ...]]:
    """Per image of `shown` (default: all) its total, shared and unique sizes, and the layers
    two or more of `images` need, biggest first. Sharing is counted across all of `images`, so
    naming one image still shows what it shares with the others."""
    users: dict[Digest, list[Digest]] = {}
    blobs: dict[Digest, BlobUse] = {}
    for image in images:
        for blob in _distinct(image.blobs):
            users.setdefault(blob.digest, []).append(image.digest)
            blobs[blob.digest] = blob
    wanted = {i.digest for i in images} if shown is None else set(shown)
    usages = []
    for image in images:
        if image.digest not in wanted:
            continue
        own = _distinct(image.blobs)
        total = sum((b.sizes for b in own), Sizes())
        shared = sum((b.sizes for b in own if len(users[b.digest]) > 1), Sizes())
        count = sum(1 for b in own if b.layer)
        usages.append(ImageUsage(image.digest, image.names, count, total, shared, total - shared))
    layers = [
        SharedLayer(digest, blobs[digest].sizes, tuple(sorted(set(needed))))
        for digest, needed in users.items()
        if blobs[digest].layer and len(needed) > 1 and wanted & set(needed)
    ]
    layers.sort(key=lambda s: (-s.sizes.compressed, s.digest))
    return tuple(usages), tuple(layers)


def combined(images: Iterable[ImageEntry]) -> Sizes:
    """The bytes all of `images` need together, each blob once."""
    blobs = {b.digest: b for image in images for b in image.blobs}
    return sum((b.sizes for b in blobs.values()), Sizes())


def _distinct(blobs: Iterable[BlobUse]) -> list[BlobUse]:
    seen: dict[Digest, BlobUse] = {}
    for blob in blobs:
        seen.setdefault(blob.digest, blob)
    return list(seen.values())


# -- where each file of the store belongs -----------------------------------------------------

# (key, label): the parts of the store `df` counts, in the order it prints them; every file
# of the store is in exactly one, "other" taking what no other claims
CATEGORIES = (
    ("image_blobs", "image blobs"),
    ("cache_blobs", "blobs only the build cache needs"),
    ("unused_blobs", "blobs nothing names"),
    ("cache_records", "cache records"),
    ("stat_cache", "stat cache"),
    ("block_cache", "gzip block cache"),
    ("layer_indexes", "layer entry and size indexes"),
    ("cache_mounts", "RUN cache mounts"),
    ("snapshots", "merged snapshots"),
    ("layer_snapshots", "per-layer snapshots"),
    ("other", "other"),
)
_CACHE_DIRS = {
    "keys": "cache_records",
    "builds": "cache_records",
    "reports": "cache_records",
    "entries": "layer_indexes",
    "mtimes": "layer_indexes",
    "mounts": "cache_mounts",
}
_CACHE_FILES = {
    "stat.db": "stat_cache",
    "blocks.db": "block_cache",
    "diffsizes.json": "layer_indexes",
}


@dataclass(frozen=True, slots=True)
class BlobRoles:
    """Hex digests of the blobs an image needs, and of those only cache records need."""

    images: frozenset[str]
    cache: frozenset[str]


def category(rel: str, roles: BlobRoles) -> str:
    """The CATEGORIES key of the file at `rel` (relative to the store root, '/'-separated)."""
    parts = rel.split("/")
    top = parts[0]
    if top == "blobs" and len(parts) == 3 and parts[1] == "sha256":
        if parts[2] in roles.images:
            return "image_blobs"
        return "cache_blobs" if parts[2] in roles.cache else "unused_blobs"
    if top == "cache" and len(parts) >= 2:
        if len(parts) > 2:
            return _CACHE_DIRS.get(parts[1], "other")
        # SQLite keeps its write-ahead log and shared memory beside the database
        base = parts[1].removesuffix("-wal").removesuffix("-shm")
        return _CACHE_FILES.get(base, "other")
    if top == "snapshots" and len(parts) > 2 and not parts[1].startswith("tmp-"):
        if parts[1] != "layers":
            return "snapshots"
        if not parts[2].startswith("tmp-") and len(parts) > 3:
            return "layer_snapshots"
    return "other"


def tally(files: Iterable[tuple[str, int]], roles: BlobRoles) -> dict[str, int]:
    """Bytes per category (every key of CATEGORIES) of `files` (relative path, bytes)."""
    totals = dict.fromkeys((key for key, _ in CATEGORIES), 0)
    for rel, size in files:
        totals[category(rel, roles)] += size
    return totals
