"""The store root: an OCI image layout plus layerbuild's private directories.

::

    <root>/oci-layout          {"imageLayoutVersion": "1.0.0"}
    <root>/index.json          one entry per image name (refs.py)
    <root>/blobs/sha256/<hex>  content (content.py)
    <root>/ingest/             blobs being written
    <root>/snapshots/          unpacked layer chains (snapshots.py)
    <root>/locks/              flock files (locking.py)
    <root>/roots/              GC roots of running builds (locking.py)
    <root>/cache/              the build cache index (cacheindex.py), the stat cache
                               (stat.db), the gzip block cache (blocks.db), the
                               directories of RUN --mount=type=cache (mounts/) and the
                               layers converted for exports (conversions/)
    <root>/sources/            where each blob was seen on registries (registry/sources.py)
    <root>/tmp/                scratch directories of running builds

Because the root *is* an OCI layout, ``skopeo inspect oci:<root>:app:1`` and ``umoci`` read the
images in it directly; they ignore the other directories.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from layerbuild.digest import Digest
from layerbuild.errors import StoreError
from layerbuild.image import mediatypes as mt
from layerbuild.store.content import ContentStore
from layerbuild.store.locking import DEFAULT_TIMEOUT, GcRoot, store_lock
from layerbuild.store.refs import Refs, empty_index, write_json_atomic
from layerbuild.store.snapshots import Snapshots

PRIVATE_DIRS = ("ingest", "snapshots", "locks", "roots", "cache", "sources", "tmp")


def default_root(environ: Mapping[str, str] | None = None) -> Path:
    """$LAYERBUILD_ROOT, else $XDG_DATA_HOME/layerbuild, else ~/.local/share/layerbuild."""
    env = os.environ if environ is None else environ
    if env.get("LAYERBUILD_ROOT"):
        return Path(env["LAYERBUILD_ROOT"])
    if env.get("XDG_DATA_HOME"):
        return Path(env["XDG_DATA_HOME"]) / "layerbuild"
    return Path.home() / ".local" / "share" / "layerbuild"


def _init_layout(root: Path) -> None:
    layout = root / "oci-layout"
    if layout.exists():
        try:
            version = json.loads(layout.read_bytes()).get("imageLayoutVersion")
        except (ValueError, AttributeError):
            version = None
        if version != mt.OCI_LAYOUT_VERSION:
            raise StoreError(
                f"{root} holds an oci-layout file layerbuild cannot use (version {version!r})",
                hint="use another --root, or move that directory away",
            )
    else:
        write_json_atomic(layout, {"imageLayoutVersion": mt.OCI_LAYOUT_VERSION})
    if not (root / "index.json").exists():
        write_json_atomic(root / "index.json", empty_index())


def _read_only(root: Path) -> bool:
    """True for an existing store on a read-only mount (created stores are never so)."""
    try:
        flags = os.statvfs(root).f_flag
    except FileNotFoundError:
        return False
    return bool(flags & os.ST_RDONLY) and (root / "oci-layout").is_file()


class Store:
    """The local store; the only writer under its root."""

    def __init__(self, root: Path, *, clean: bool = True, writable: bool = True) -> None:
        self.root = root
        self.writable = writable
        self.content = ContentStore(root, clean=clean, writable=writable)
        self.refs = Refs(root)
        self.snapshots = Snapshots(root / "snapshots", clean=clean and writable)

    @classmethod
    def open(cls, root: Path | None = None, *, clean: bool = True) -> Store:
        """Open (creating it when missing) the store at `root`, or at the default root.

        Opening removes what dead processes left in ``ingest/`` and ``snapshots/``, unless
        `clean` is False (fsck, which reports those leftovers before it removes any). A store
        on a read-only file system opens as it is, for commands that only read (`writable` is
        False); those that write fail at their first write, saying the store is read-only.
        """
        root = (root if root is not None else default_root()).absolute()
        if _read_only(root):
            return cls(root, clean=False, writable=False)
        try:
            root.mkdir(parents=True, exist_ok=True)
            for name in PRIVATE_DIRS:
                (root / name).mkdir(exist_ok=True)
            _init_layout(root)
        except PermissionError as e:
            raise StoreError(
                f"cannot create the store at {root}: {e.strerror}",
                hint="pass --root with a writable directory, or set LAYERBUILD_ROOT",
            ) from e
        return cls(root, clean=clean)

    # Paths of the layout that other packages keep things in: named here, so that no module
    # outside store/ spells a directory of the root (tests/unit/store/test_layout_paths.py)

    @property
    def stat_db(self) -> Path:
        """The stat cache of build contexts (context/statcache.py)."""
        return self.root / "cache" / "stat.db"

    @property
    def blocks_db(self) -> Path:
        """The gzip block cache of stored layers (blockcache.py)."""
        return self.root / "cache" / "blocks.db"

    @property
    def tar_index_dir(self) -> Path:
        """Where each stored layer's file entries lie in its tar, for splicing (tarindex.py)."""
        return self.root / "cache" / "tarindex"

    @property
    def cache_mounts_dir(self) -> Path:
        """The persistent directories of ``RUN --mount=type=cache``, one per cache id."""
        return self.root / "cache" / "mounts"

    @property
    def conversions_dir(self) -> Path:
        """Which blob a layer became in another compression (conversions.py)."""
        return self.root / "cache" / "conversions"

    @property
    def sources_dir(self) -> Path:
        """Where each blob was seen on registries (registry/sources.py)."""
        return self.root / "sources"

    @property
    def builds_dir(self) -> Path:
        """The build history, one record a build (buildhistory.py)."""
        return self.root / "builds"

    @property
    def tmp_dir(self) -> Path:
        """Scratch space of running builds, on the store's file system."""
        return self.root / "tmp"

    def lock(
        self, shared: bool = False, *, timeout: float = DEFAULT_TIMEOUT
    ) -> contextlib.AbstractContextManager[None]:
        """The store lock: exclusive for gc; builds hold it shared while they run.

        Ref updates lock on their own (Refs); do not wrap them in an exclusive store lock from
        a process that already holds it shared.
        """
        return store_lock(self.root, shared, timeout=timeout)

    def gc_root(self, digests: Iterable[Digest] = ()) -> GcRoot:
        """Keep `digests` (and what they refer to) alive while the returned root is open."""
        return GcRoot(self.root, digests)
