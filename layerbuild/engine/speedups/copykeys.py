"""The two shortcuts of a COPY step around the executor's cache lookup (speed-ups that
speedups/active.py puts behind the Speedups interface).

Before: a COPY whose selection (names and lstat of what it reads, `FileSteps.quick_key`) is
the one a sources digest was recorded for is keyed with that digest, without building its
Changes or reading a file. After a miss: a RUN on top of the layer gets its overlay lower
written from the Changes (store/deltasnap.py: a delta over the previous build's snapshot of
the same step, or a full tree linked from it) instead of unpacking the blob. When a RUN
follows in the stage, that tree is written on a worker thread while the layer is packed
(packing leaves a core mostly idle), and adopted once the packed contents are known to be
the ones it was written from.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from layerbuild.childcall import call_in_child
from layerbuild.context.statcache import StatCache
from layerbuild.digest import Digest
from layerbuild.engine.filesteps import QuickKey
from layerbuild.engine.layerwriter import LayerWriter
from layerbuild.engine.state import StageState
from layerbuild.engine.stepcache import StepCache, chain
from layerbuild.errors import ChildFailed
from layerbuild.image.changes import Change
from layerbuild.image.manifest import Layer
from layerbuild.plan.keys import CacheKey
from layerbuild.store.cacheindex import CacheRecord
from layerbuild.store.layers import LayerSnapshots, StepDirs

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from layerbuild.store.materialize import Previous


@dataclass
class _Pending:
    """A snapshot being written (into `dirs.upper`) while its layer is packed. `digests` are
    the file contents it was written from: those the key read, or those it read itself when
    the layer is being packed for the first time; it is adopted only if they are the packed
    ones."""

    dirs: StepDirs
    digests: dict[str, Digest]
    done: Future[str | None]  # deltasnap.write_snapshot's answer: the base, "" or None
    cancel: threading.Event


@dataclass
class CopyKeys:
    """Quick COPY keys from the stat cache, and snapshots written ahead."""

    statcache: StatCache
    cache: StepCache
    layers: LayerWriter
    snaps: LayerSnapshots
    ahead: bool = True  # False: a RUN's lower is always unpacked from the COPY's blob
    # thread id -> the snapshot of the step at hand: each stage runs on its own thread
    # (engine/scheduler.py), one step at a time
    _pendings: dict[int, _Pending] = field(default_factory=dict)
    _unused: list[_Pending] = field(default_factory=list)
    _pool: ThreadPoolExecutor | None = None
    _adopted: set[Digest] = field(default_factory=set)  # diff_ids given a snapshot from here
    # diff_id -> writes that layer's tree into a step's empty upper dir (a COPY layer
    # materialized from its Changes), its mtimes record beside it: deltasnap.write_snapshot's
    # answer; `write_snapshots` runs it when a RUN needs the layer
    _writers: dict[Digest, Callable[[StepDirs], str | None]] = field(default_factory=dict)

    @property
    def _pending(self) -> _Pending | None:
        return self._pendings.get(threading.get_ident())

    @_pending.setter
    def _pending(self, pending: _Pending | None) -> None:
        if pending is None:
            self._pendings.pop(threading.get_ident(), None)
        else:
            self._pendings[threading.get_ident()] = pending

    def quick_hit(
        self, state: StageState, quick: QuickKey, inputs: list[tuple[str, str]]
    ) -> tuple[CacheKey, CacheRecord] | None:
        """The key and cache record of a COPY whose selection is unchanged since its sources
        digest was recorded. None sends the step down the full path: no digest recorded, or
        its key no longer cached (a pruned layer must be rebuilt from the Changes)."""
        digest = self.statcache.selection_digest(quick.digest, listed=quick.listed)
        if digest is None:
            return None
        key = chain(state.key, [*inputs, ("from", quick.source_key), ("sources", str(digest))])
        record = self.cache.lookup(state.name, key, state.meta.config)
        return (key, record) if record is not None else None

    def remember(self, quick: QuickKey, digest: Digest) -> None:
        self.statcache.remember_selection(
            quick.digest, digest, newest_ns=quick.newest_ns, taken_ns=quick.taken_ns
        )

    def start_snapshot(
        self,
        stage: str,
        index: int,
        changes: list[Change],
        files: dict[str, str] | None,
        expected: dict[str, Digest] | None,
    ) -> None:
        """Begin writing the snapshot of a COPY layer about to be packed, for the RUN that
        follows in its stage; `offer_snapshot` adopts it once the layer is known. `expected`:
        the file digests of `files` (layerwriter.file_digests). Both None: the key is not
        known yet (a context packed before its key), so nothing can be linked from an
        earlier snapshot and the writer records what it read."""
        if os.geteuid() != 0 or not self.ahead:
            # unless turned off: owners could not be given (never after enter_rootless_userns)
            return
        if self._pending is not None:
            self._set_aside(self._pending)
        digests: dict[str, Digest] = dict(expected) if expected is not None else {}
        from layerbuild.store.deltasnap import write_snapshot  # on a miss only

        dirs = self.snaps.prepare_step()
        cancel = threading.Event()
        write = functools.partial(
            write_snapshot,
            changes,
            dirs.upper,
            files=files or {},
            expected=expected,
            epoch=self.layers.source_date_epoch,
            previous=self._previous(stage, index) if files is not None else None,
            record_to=_record(dirs),
        )
        written = digests if expected is None else None
        try:
            # a child process: writing 20k entries is mostly Python, and in a thread it held
            # the interpreter lock the tar writer packing this layer needs (childcall.py)
            apart = functools.partial(_write_apart, write, written is not None)
            child = call_in_child(apart, cancel)
        except OSError:
            from concurrent.futures import ThreadPoolExecutor  # here: not needed when all hit

            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="snapshot")
            done = self._pool.submit(write, written=written, cancel=cancel)
        else:
            from concurrent.futures import Future

            done = Future()
            child.add_done_callback(functools.partial(_settle, done, written))
        self._pending = _Pending(dirs, digests, done, cancel)

    def offer_snapshot(
        self, stage: str, index: int, layer: Layer, changes: list[Change], files: dict[str, str]
    ) -> None:
        """Should a RUN need this COPY layer as an overlay lower, let its tree come from the
        Changes (store/materialize.py) rather than from unpacking the blob just packed."""
        packed = self.layers.contents.get(layer.diff_id)
        pending, self._pending = self._pending, None
        if packed is not None and pending is not None:
            self._unused.append(pending)  # until adopted: removed at close()
            self._writers[layer.diff_id] = functools.partial(
                self._adopt, pending, packed, layer.diff_id
            )
            return
        if pending is not None:
            self._set_aside(pending)
        if os.geteuid() != 0 or packed is None or not self.ahead:
            return
        from layerbuild.store.deltasnap import write_snapshot

        write = functools.partial(
            write_snapshot,
            changes,
            files=files,
            expected=packed,
            epoch=self.layers.source_date_epoch,
            previous=self._previous(stage, index),
        )
        self._writers[layer.diff_id] = functools.partial(_write_into, write)

    def write_snapshots(self, layers: Sequence[Layer]) -> None:
        """Write the snapshots of those of `layers` offered here (`offer_snapshot`) that the
        store does not have yet, from their Changes: the store unpacks the others when a RUN
        asks it for its lower directories."""
        for layer in layers:
            write = self._writers.pop(layer.diff_id, None)  # taken by one stage's RUN only
            if write is None or self.snaps.find(layer.diff_id) is not None:
                continue
            step = self.snaps.prepare_step()
            try:
                base = write(step)
                if base is not None:
                    below = Digest("sha256:" + base) if base else None
                    self.snaps.commit_layer(step.upper, layer.diff_id, base=below)
                    self.snaps.keep_mtimes(_record(step), layer.diff_id)
            finally:
                self.snaps.discard(step)

    def pending_snapshot(self) -> Callable[[], tuple[Path, ...] | None] | None:
        """The snapshot being written for the step at hand: a call that waits until it is
        written and gives the directories it adds above the layers below it, top-most first
        (None: it could not be written)."""
        pending = self._pending
        if pending is None:
            return None
        return functools.partial(self._written_dirs, pending)

    def _written_dirs(self, pending: _Pending) -> tuple[Path, ...] | None:
        base = pending.done.result()
        if not base:
            return None if base is None else (pending.dirs.upper,)
        below = self.snaps.chain(Digest("sha256:" + base))
        return None if below is None else (pending.dirs.upper, *below)

    def adopted(self, layer: Layer) -> bool:
        """Whether the snapshot of `layer` is one written here (checked against what was
        packed), rather than unpacked from its blob."""
        return layer.diff_id in self._adopted

    def drop_pending(self) -> None:
        """The step hit after all: the snapshot begun for it is not needed."""
        if self._pending is not None:
            self._set_aside(self._pending)
            self._pending = None

    def close(self) -> None:
        """Stop snapshots still being written and remove those no RUN adopted."""
        for pending in self._pendings.values():  # a stage stopped before its layer was known
            self._set_aside(pending)
        self._pendings.clear()
        for pending in self._unused:
            pending.cancel.set()
        for pending in self._unused:
            pending.done.exception()  # waits for the worker to notice
            self.snaps.discard(pending.dirs)
        self._unused.clear()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _set_aside(self, pending: _Pending) -> None:
        pending.cancel.set()
        self._unused.append(pending)

    def _adopt(
        self, pending: _Pending, packed: dict[str, Digest], diff_id: Digest, dest: StepDirs
    ) -> str | None:
        """The builder of a snapshot written ahead: its tree (and mtimes record) moved into
        the step directories `dest`, if it was written from the contents that were packed
        (write_snapshot's answer)."""
        self._unused.remove(pending)
        try:
            base = pending.done.result()
            if base is not None and all(packed.get(p) == d for p, d in pending.digests.items()):
                os.rename(pending.dirs.upper, dest.upper)  # rename(2) replaces an empty dir
                with contextlib.suppress(FileNotFoundError):
                    os.rename(_record(pending.dirs), _record(dest))
                self._adopted.add(diff_id)
                return base
            return None
        finally:
            self.snaps.discard(pending.dirs)

    def _previous(self, stage: str, index: int) -> Previous | None:
        """The snapshot of the same step in the previous build, if it is still there."""
        record = self.cache.previous_record(stage, index)
        if record is None or record.layer is None:
            return None
        from layerbuild.store.materialize import Previous

        diff_id = record.layer.diff_id
        dirs = self.snaps.chain(diff_id)
        if dirs is None:
            return None
        mtimes = self.snaps.mtimes_path(diff_id)
        return Previous(dirs[-1], record.files, diff_id.hex, tuple(dirs[:-1]), mtimes)


def _record(dirs: StepDirs) -> Path:
    """Where a snapshot written into `dirs.upper` gets its mtimes record (store/layermtimes)."""
    return dirs.tmp / "mtimes"


def _write_into(write: Callable[..., str | None], step: StepDirs) -> str | None:
    return write(step.upper, record_to=_record(step))


def _write_apart(
    write: Callable[..., str | None], cold: bool
) -> tuple[str | None, dict[str, str]]:
    """`write_snapshot` in the child: (its answer, the digests of what it wrote when cold)."""
    written: dict[str, Digest] | None = {} if cold else None
    base = write(written=written)
    return base, {path: str(digest) for path, digest in (written or {}).items()}


def _settle(
    done: Future[str | None],
    written: dict[str, Digest] | None,
    child: Future[tuple[str | None, dict[str, str]]],
) -> None:
    """The snapshot child's outcome, as the thread-pool version gives it."""
    try:
        base, digests = child.result()
    except ChildFailed:
        base, digests = None, {}
    if written is not None:
        written.update((path, Digest(d)) for path, d in digests.items())
    done.set_result(base)
