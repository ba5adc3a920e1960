"""Snapshots: the merged root filesystem of a sequence of layers, unpacked once and reused.

Vocabulary:

- A *chain* identifies a sequence of layers. The OCI image spec defines ChainID over DiffIDs
  (ChainID(L0) = DiffID(L0), ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))). We use the
  same recurrence over the *blob digests* of the (possibly compressed) layers instead: those are
  what a manifest lists and what the content store verifies as it reads, so a snapshot can be
  found before any layer is decompressed, and its key is checked by the very read that fills it.
  The price is that the same content compressed two ways gets two snapshots; that is harmless.
- A *committed* snapshot is the directory ``snapshots/<hex of the chain id>``. It is immutable:
  callers read it, or use it as an overlay lower directory, and never write into it.

Lifecycle: ``rootfs()`` prepares in ``snapshots/tmp-<pid>-<random>`` (a copy of the longest
committed prefix, then the remaining layers applied with ``unpack.apply_layer``), and commits by
renaming the directory into place. A killed build leaves only a ``tmp-`` directory, which no
reader ever looks at and which the next Snapshots over the same root removes (its pid is dead).
Two builds preparing the same chain both succeed; the second rename loses and is discarded.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from layerbuild.errors import ImageFormatError, StoreError
from layerbuild.image import mediatypes as mt
from layerbuild.image.descriptor import Descriptor
from layerbuild.store.crashsafe import left_by_dead_processes

if TYPE_CHECKING:
    from layerbuild.store.layout import Store

EMPTY = "empty"  # the snapshot of zero layers (FROM scratch)
LAYERS_DIR = "layers"
_TMP_PREFIX = "tmp-"


def chain_ids(layers: Sequence[Descriptor]) -> list[str]:
    """The chain id of every prefix of `layers` (see the module docstring for why blob digests)."""
    out: list[str] = []
    for layer in layers:
        if not out:
            out.append(str(layer.digest))
        else:
            joined = f"{out[-1]} {layer.digest}".encode()
            out.append("sha256:" + hashlib.sha256(joined).hexdigest())
    return out


@contextlib.contextmanager
def decompressed(stream: BinaryIO, media_type: str) -> Iterator[BinaryIO]:
    """The uncompressed tar stream of a layer blob, by its media type."""
    try:
        compression = mt.layer_compression(media_type)
    except ValueError as e:
        raise ImageFormatError(f"cannot unpack a layer of media type {media_type!r}") from e
    if compression == "none":
        yield stream
    elif compression == "gzip":
        from isal import igzip

        gz = igzip.IGzipFile(fileobj=stream, mode="rb")  # type: ignore[no-untyped-call]
        try:
            yield cast(BinaryIO, gz)
        finally:
            gz.close()
    else:
        import zstandard

        with zstandard.ZstdDecompressor().stream_reader(
            stream, read_across_frames=True, closefd=False
        ) as zs:
            yield cast(BinaryIO, zs)


def copy_tree(src: Path, dest: Path) -> None:
    """Copy a rootfs keeping owners, modes, times, xattrs, hard links, devices and fifos.

    `cp -a` does all of that in one tested tool; shutil.copytree would lose owners, hard links
    and device nodes, and blocks on fifos. --reflink=auto only shares extents where the
    filesystem can, and falls back to a plain copy.
    """
    import subprocess  # here: a build whose steps all hit copies no snapshot

    try:
        subprocess.run(
            ["cp", "-a", "--reflink=auto", "--no-target-directory", str(src), str(dest)],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as e:
        raise StoreError(
            f"copying snapshot {src} failed: {e.stderr.decode(errors='replace').strip()}",
            hint="check free space under the store root",
        ) from e


def tree_files(path: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry under `path` but directories (files, symlinks, devices), with its lstat;
    symlinks are never followed. Unreadable directories are skipped."""
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return
    for entry in entries:
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            yield from tree_files(Path(entry.path))
        else:
            yield entry.path, st


def tree_size(path: Path) -> int:
    """Apparent bytes of everything under `path` but directories, hard links counted once:
    what deleting it gives back in `du --apparent-size` terms (directories excluded, as their
    size is the file system's choice). `layerbuild df` counts the store the same way."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for _path, st in tree_files(path):
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


class Snapshots:
    """Committed snapshots under `root_dir` (``<store>/snapshots``), keyed by chain id."""

    def __init__(self, root_dir: Path, *, clean: bool = True) -> None:
        self.root_dir = root_dir
        root_dir.mkdir(parents=True, exist_ok=True)
        if clean:
            self.clean_stale()

    def path(self, chain: str) -> Path:
        return self.root_dir / (chain.split(":", 1)[-1] if chain != EMPTY else EMPTY)

    def has(self, chain: str) -> bool:
        return self.path(chain).is_dir()

    def list(self) -> list[str]:
        """Committed chain ids ("sha256:<hex>", or EMPTY)."""
        out = []
        for entry in os.scandir(self.root_dir):
            if entry.name == LAYERS_DIR:
                continue  # per-layer overlay snapshots (store/layers.py) are not chains
            if entry.name == EMPTY:
                out.append(EMPTY)
            elif not entry.name.startswith(_TMP_PREFIX):
                out.append("sha256:" + entry.name)
        return sorted(out)

    def rootfs(self, store: Store, layers: Sequence[Descriptor]) -> Path:
        """The merged rootfs of `layers` (applied in order); built once, then reused."""
        if not layers:
            empty = self.path(EMPTY)
            empty.mkdir(mode=0o755, exist_ok=True)
            return empty
        chains = chain_ids(layers)
        target = self.path(chains[-1])
        if target.is_dir():
            return target
        base = next((i for i in range(len(chains) - 2, -1, -1) if self.has(chains[i])), -1)
        tmp = self.root_dir / f"{_TMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}"
        try:
            if base >= 0:
                copy_tree(self.path(chains[base]), tmp)
            else:
                tmp.mkdir(mode=0o755)
            for layer in layers[base + 1 :]:
                self._apply(store, layer, tmp)
            try:
                os.rename(tmp, target)
            except OSError:
                if not target.is_dir():
                    raise
                # another build committed the same chain first: theirs is as good as ours
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        return target

    @staticmethod
    def _apply(store: Store, layer: Descriptor, dest: Path) -> None:
        # closing the blob reader verifies its digest, so a corrupt blob fails the snapshot
        from layerbuild.store.unpack import apply_layer  # tarfile & co: only to unpack

        with store.content.open(layer.digest) as blob, decompressed(blob, layer.media_type) as tar:
            apply_layer(tar, dest)

    def remove(self, chain: str) -> bool:
        """Delete a committed snapshot; renamed away first so no reader sees it half-deleted."""
        path = self.path(chain)
        doomed = self.root_dir / f"{_TMP_PREFIX}{os.getpid()}-rm-{os.urandom(6).hex()}"
        try:
            os.rename(path, doomed)
        except FileNotFoundError:
            return False
        shutil.rmtree(doomed)
        return True

    def prune(self, keep: set[str] | frozenset[str] = frozenset()) -> builtins.list[str]:
        """Remove every committed snapshot not in `keep`; returns the removed chain ids."""
        removed = [c for c in self.list() if c not in keep and self.remove(c)]
        self.clean_stale()
        return removed

    def clean_stale(self) -> builtins.list[Path]:
        """Remove ``tmp-`` directories of dead processes (killed builds)."""
        removed = left_by_dead_processes(self.root_dir, _TMP_PREFIX)
        for path in removed:
            shutil.rmtree(path, ignore_errors=True)
        return removed
