"""Per-layer snapshots: each layer unpacked alone, in overlayfs lowerdir format, for RUN.

Where `snapshots.py` keeps the *merged* rootfs of a chain of layers (for COPY --from and
exports), a RUN step stacks the parent image's layers as overlay lower directories, so each
layer is unpacked once, by itself, and reused by every step and build that has it:

- ``<store>/snapshots/layers/<hex of diff_id>`` holds one layer: its files, whiteouts as 0/0
  character devices and opaque directories marked with the overlay opaque xattr (both
  ``trusted.overlay.opaque`` and ``user.overlay.opaque`` when written by real root; only the
  user one when written rootless, and then the directory name ends in ``-userns``). Rootless
  snapshots are written by root of the build's user namespace (sandbox/userns.py), so their
  files belong to subordinate ids on the host: each flavour is used only by its own kind of
  process, which is the only one that sees their owners right. Snapshots are keyed
  by diff_id (the digest of the uncompressed tar, checked while unpacking): the same content
  compressed two ways is one snapshot.
- A committed snapshot is immutable; it is only ever an overlay lower directory.
- A layer spliced from an earlier one (a COPY with one file changed) may instead get a *delta*
  snapshot: the entries that differ, stacked above the earlier layer's snapshot
  (``<hex>-on-<base hex>``, store/snapnames.py, store/deltaplan.py), so writing it costs what
  changed and the RUN after it walks the earlier snapshot's warm inodes. `chain` gives a
  layer's directories, top-most first; the names say what each needs, so gc keeps a delta's
  bases (`unneeded`) without looking inside.

Lifecycle: `layer_dir` unpacks through ``unpack.apply_layer`` (the security boundary) into
``layers/tmp-<pid>-<random>`` and renames it into place. A caller that can write a layer's tree
itself (the engine, a COPY layer from its Changes) asks `find` whether the snapshot exists,
writes into the directory `prepare_layer` returns and hands it to `commit_layer`; the store
never calls back into its callers. A RUN step gets its upper and work
directories from `prepare_step` (in such a tmp directory, so on the same filesystem), and
after its upper dir was packed into a layer `commit_upper` renames it into place as that
layer's snapshot instead of unpacking the blob again. A killed build leaves only ``tmp-``
directories, which the next LayerSnapshots over the same store removes (their pid is dead).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from layerbuild import privilege
from layerbuild.digest import Digest
from layerbuild.errors import DigestMismatch
from layerbuild.image.manifest import Layer
from layerbuild.store import snapnames
from layerbuild.store.crashsafe import left_by_dead_processes
from layerbuild.store.snapshots import decompressed, tree_size

if TYPE_CHECKING:
    from layerbuild.store.layout import Store

_TMP_PREFIX = "tmp-"
# OVL_MAX_STACK: overlayfs refuses more lower directories than this in one mount
MAX_LOWERS = 500


@dataclass(frozen=True, slots=True)
class StepDirs:
    """The overlay upper and work directories of one RUN step, inside `tmp`."""

    tmp: Path
    upper: Path
    work: Path


class _HashingReader:
    """Hashes what tarfile reads, so the diff_id of a layer is checked by the unpack itself."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.hash.update(data)
        return data

    def drain(self) -> Digest:
        while self.read(1 << 20):
            pass  # tarfile stops at the end-of-archive blocks; the digest covers all bytes
        return Digest("sha256:" + self.hash.hexdigest())


class LayerSnapshots:
    """Committed per-layer snapshots under ``<store_root>/snapshots/layers``."""

    def __init__(self, store_root: Path, *, rootless: bool | None = None) -> None:
        self.root_dir = store_root / "snapshots" / "layers"
        self.root_dir.mkdir(parents=True, exist_ok=True)
        self.rootless = privilege.rootless() if rootless is None else rootless
        self.clean_stale()

    def path(self, diff_id: Digest, *, rootless: bool | None = None) -> Path:
        """Where the full snapshot of `diff_id` is (or would be)."""
        # "-userns", not the "-rootless" of stores made before rootless builds kept owners:
        # those snapshots lack them and must not be reused
        rootless = self.rootless if rootless is None else rootless
        return self.root_dir / snapnames.snap_name(diff_id.hex, None, rootless=rootless)

    def find(self, diff_id: Digest) -> Path | None:
        """The top directory of the committed snapshot of `diff_id` of this flavour (root or
        rootless), if any: in a user namespace, the owners of a root-made snapshot would all
        show as 65534."""
        dirs = self.chain(diff_id)
        return dirs[0] if dirs else None

    def chain(self, diff_id: Digest) -> list[Path] | None:
        """The directories of the snapshot of `diff_id`, top-most first: one for a full
        snapshot, a delta's and then its base's for a delta (None: no usable snapshot)."""
        full = self.path(diff_id)
        if full.is_dir():
            return [full]
        snaps = snapnames.index(os.listdir(self.root_dir))
        names = snapnames.chain(snaps, diff_id.hex, rootless=self.rootless)
        return None if names is None else [self.root_dir / name for name in names]

    def layer_dirs(self, store: Store, layer: Layer) -> list[Path]:
        """The directories of the snapshot of `layer` (top-most first), unpacked from the
        store's blob into a full one the first time, or when a delta lost its base."""
        return self.chain(layer.diff_id) or [self.layer_dir(store, layer)]

    def layer_dir(self, store: Store, layer: Layer) -> Path:
        """The full snapshot of `layer`, unpacked from the store's blob the first time."""
        found = self.path(layer.diff_id)
        if found.is_dir():
            return found
        from layerbuild.store.unpack import apply_layer  # tarfile & co: only to unpack

        tmp = self._tmp()
        try:
            tmp.mkdir(mode=0o755)
            with (
                store.content.open(layer.digest) as blob,
                decompressed(blob, layer.media_type) as tar,
            ):
                reader = _HashingReader(tar)
                unpack_to = cast(BinaryIO, reader)  # tarfile's stream mode only calls read()
                apply_layer(unpack_to, tmp, rootless=self.rootless, whiteouts="overlay")
                actual = reader.drain()
            if actual != layer.diff_id:
                raise DigestMismatch(layer.diff_id, actual, what=f"layer {layer.digest.short}")
            return self._commit(tmp, self.path(layer.diff_id))
        finally:
            remove_tree(tmp)

    def prepare_layer(self) -> Path:
        """An empty directory to write one layer's tree into, in the overlay lowerdir format
        `layer_dir` unpacks to (whiteouts as 0/0 character devices, opaque xattrs).

        Contract: the caller fills it and then either passes it to `commit_layer` (it becomes
        the layer's snapshot and must not be touched again) or to `discard_layer`; one it
        leaves behind is removed once its process is dead (`clean_stale`)."""
        tmp = self._tmp()
        tmp.mkdir(mode=0o755)
        return tmp

    def commit_layer(self, tree: Path, diff_id: Digest, *, base: Digest | None = None) -> Path:
        """Make `tree` (from `prepare_layer`, written by the caller) the snapshot of the layer
        `diff_id`; the caller vouches that it holds that layer's content, or with `base`, the
        entries by which the layer differs from layer `base` (store/deltaplan.py). Another
        process that committed the same layer first wins, and `tree` is then left for
        `discard_layer`; so is a delta whose base is gone meanwhile."""
        if base is None:
            return self._commit(tree, self.path(diff_id))
        found = self.find(diff_id)
        if found is not None or self.chain(base) is None:
            return found or tree
        name = snapnames.snap_name(diff_id.hex, base.hex, rootless=self.rootless)
        return self._commit(tree, self.root_dir / name)

    def discard_layer(self, tree: Path) -> None:
        """Remove a directory of `prepare_layer` that was not committed (no-op if it was)."""
        remove_tree(tree)

    def mtimes_path(self, diff_id: Digest) -> Path:
        """Where the mtimes record of layer `diff_id` is kept (store/layermtimes.py)."""
        from layerbuild.store.layermtimes import mtimes_dir

        return mtimes_dir(self.root_dir.parent.parent) / diff_id.hex

    def keep_mtimes(self, record: Path, diff_id: Digest) -> None:
        """Keep the mtimes record a snapshot writer left at `record` (if it did) for layer
        `diff_id`, whose snapshot it wrote."""
        if record.is_file():
            from layerbuild.store.layermtimes import keep

            keep(self.root_dir.parent.parent, record, diff_id.hex)

    def prepare_step(self) -> StepDirs:
        """Fresh, empty upper and work directories for one RUN step."""
        tmp = self._tmp()
        tmp.mkdir(mode=0o700)
        (tmp / "upper").mkdir(mode=0o755)
        (tmp / "work").mkdir(mode=0o700)
        return StepDirs(tmp, tmp / "upper", tmp / "work")

    def commit_upper(self, store: Store, layer: Layer, upperdir: Path) -> Path:
        """Make the upper dir a RUN step left (already packed into `layer`) that layer's
        snapshot; the rest of its step directory is removed."""
        del store  # the upper dir already is the layer's content; nothing is read back
        found = self.find(layer.diff_id)
        if found is not None:
            return found
        target = self.path(layer.diff_id)
        _as_lowerdir(upperdir, both_opaque_xattrs=not self.rootless)
        return self._commit(upperdir, target)

    def discard(self, step: StepDirs) -> None:
        """Remove a step's directories (the step failed, or its upper dir was committed)."""
        remove_tree(step.tmp)

    def lowerdirs(
        self, store: Store, layers: Sequence[Layer], *, limit: int = MAX_LOWERS
    ) -> list[Path]:
        """Lower directories for a RUN over `layers` (bottom first), top-most first.

        More directories than `limit` (a delta snapshot counts its whole chain) do not fit one
        overlay mount: the lowest layers are then merged into one flattened snapshot
        (snapshots.py, cached by chain), which is the bottom lower.
        """
        if not layers:
            return [store.snapshots.rootfs(store, [])]
        dirs: list[Path] = []
        for i in range(len(layers) - 1, -1, -1):
            more = self.layer_dirs(store, layers[i])
            if len(dirs) + len(more) > limit or (i > 0 and len(dirs) + len(more) == limit):
                flat = [x.descriptor for x in layers[: i + 1]]
                return [*dirs, store.snapshots.rootfs(store, flat)]
            dirs.extend(more)
        return dirs

    def _tmp(self) -> Path:
        return self.root_dir / f"{_TMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}"

    def _commit(self, src: Path, target: Path) -> Path:
        try:
            os.rename(src, target)
        except OSError:
            if not target.is_dir():
                raise
            # another build committed the same layer first: theirs is as good as ours
        return target

    def unneeded(self, keep: set[str]) -> list[Path]:
        """Committed snapshots neither of a layer whose diff_id hex is in `keep` nor below a
        delta snapshot of one (what `prune` removes)."""
        names = [n for n in os.listdir(self.root_dir) if not n.startswith(_TMP_PREFIX)]
        needed = snapnames.needed(names, keep)
        return [self.root_dir / n for n in names if n not in needed]

    def layer_hexes(self) -> set[str]:
        """The diff_id hex of every layer with a committed snapshot (of either flavour)."""
        names = (snapnames.parse(n) for n in os.listdir(self.root_dir))
        return {parsed.hex for parsed in names if parsed is not None}

    def prune(self, keep: set[str]) -> int:
        """Remove committed snapshots whose diff_id hex is not in `keep`; the bytes freed."""
        freed = 0
        for path in self.unneeded(keep):
            freed += tree_size(path)
            remove_tree(path)
        return freed

    def clean_stale(self) -> list[Path]:
        """Remove ``tmp-`` directories of dead processes (killed builds)."""
        removed = left_by_dead_processes(self.root_dir, _TMP_PREFIX)
        for path in removed:
            remove_tree(path)
        return removed


def _as_lowerdir(upper: Path, *, both_opaque_xattrs: bool) -> None:
    """Drop overlay bookkeeping (origin, impure, ...) an upper dir carries, keeping opaque
    markers; a root-made opaque dir also gets the user.* marker so rootless mounts see it."""
    from layerbuild.store.whiteouts import OVERLAY_OPAQUE_XATTRS as opaque_names

    for dirpath, _dirs, files in os.walk(upper):
        _clean_xattrs(dirpath, opaque_names, both_opaque_xattrs)
        for name in files:
            _clean_xattrs(os.path.join(dirpath, name), opaque_names, False)


def _clean_xattrs(path: str, opaque_names: tuple[str, ...], both: bool) -> None:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return
    opaque = any(
        n in opaque_names and os.getxattr(path, n, follow_symlinks=False) == b"y" for n in names
    )
    for name in names:
        if ".overlay." in name and name not in opaque_names:
            os.removexattr(path, name, follow_symlinks=False)
    if opaque and both:
        for name in opaque_names:
            os.setxattr(path, name, b"y", follow_symlinks=False)


def remove_tree(path: Path) -> None:
    """rmtree that also removes directories without permissions (overlay's work/work is 000,
    and an unprivileged caller cannot list it without making it accessible first)."""
    if not os.path.lexists(path):
        return
    for dirpath, dirnames, _files in os.walk(path):
        for name in dirnames:
            sub = os.path.join(dirpath, name)
            if not os.path.islink(sub):
                with contextlib.suppress(OSError):
                    os.chmod(sub, 0o700)
    shutil.rmtree(path, ignore_errors=True)
