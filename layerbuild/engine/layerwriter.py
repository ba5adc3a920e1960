"""Turning a step's Changes into a layer of its stage: packing into the store, the config's
diff_ids and history, and the content digest a COPY's cache key needs (taken from the packing
read itself when the context was never seen before)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from layerbuild.context.filesource import FileSource
from layerbuild.context.hashing import changes_digest
from layerbuild.context.statcache import RACY_MARGIN_NS, StatCache
from layerbuild.digest import Digest
from layerbuild.dockerfile import instructions as ins
from layerbuild.engine.state import StageState
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.config import History
from layerbuild.image.manifest import Layer
from layerbuild.store.blockcache import BlockCache
from layerbuild.store.layout import Store
from layerbuild.store.splicesource import SpliceCounters

if TYPE_CHECKING:
    from layerbuild.store.splicesource import SpliceSource

HISTORY_COMMENT = "layerbuild.dockerfile.v0"
# below this many unread bytes, hashing first and packing only on a miss is cheap enough
_SPECULATE_BYTES = 8 << 20


@dataclass
class LayerWriter:
    """Packs a step's changes into a layer blob in the store."""

    store: Store
    statcache: StatCache
    compression: str
    source_date_epoch: int | None
    created: str  # the history timestamp of this build's steps
    # diff_id -> layer path -> digest of the file content packed there (store/materialize.py)
    contents: dict[Digest, dict[str, Digest]] = field(default_factory=dict)
    blocks: BlockCache | None = None  # gzip blocks of earlier layers, reused when packing
    # COPY layers are indexed when packed and spliced from the step's previous layer (a
    # speed-up: BuildOptions.splice); its counters go to `splice_stats` (benchmarks)
    splice: bool = False
    splice_stats: Path | None = None
    splices: SpliceCounters = field(default_factory=lambda: SpliceCounters())

    def sources_digest(
        self,
        changes: list[Change],
        on_speculate: Callable[[], None] | None = None,
        *,
        speculate: bool = True,
    ) -> tuple[Digest, dict[str, str], Layer | None]:
        """The digest of a COPY's Changes for its key. When most of its files were never seen
        by the stat cache (a context built for the first time), the layer is packed first and
        the file digests come from that one read, instead of reading everything twice, unless
        not to `speculate` (a speed-up: Speedups.speculative_packing)."""
        files = [
            (c.path, c.content)
            for c in changes
            if c.kind is ChangeKind.FILE and isinstance(c.content, FileSource)
        ]
        on_disk = [(source.path, source.st) for _, source in files]
        known, unseen = self.statcache.probe(on_disk)
        unknown_bytes = sum(st.st_size for (_, st), d in zip(on_disk, known, strict=True) if not d)
        if (
            not speculate
            or not on_disk
            or unseen * 2 < len(on_disk)
            or unknown_bytes < _SPECULATE_BYTES
        ):
            # by Change, not by file read: two Changes of one file may hold two lstats of it
            trusted = {path: d for (path, _), d in zip(files, known, strict=True) if d}
            digest, summary = changes_digest(changes, self.statcache, known=trusted)
            return digest, summary, None
        if on_speculate is not None:
            on_speculate()
        started = time.time_ns()
        digests: dict[str, Digest] = {}
        packed = self.pack(changes, digests, indexed=True)
        by_path = {c.content.path: c.path for c in changes if isinstance(c.content, FileSource)}
        self.statcache.remember_later(
            [(p, st, digests[by_path[p]]) for p, st in on_disk if by_path[p] in digests], started
        )
        digest, summary = changes_digest(changes, self.statcache, known=digests)
        return digest, summary, packed

    def history(self, state: StageState, instr: ins.Instruction, *, empty: bool) -> StageState:
        """The stage with `instr` in its history; `empty`: it made no layer."""
        return state.with_config(state.meta.config.with_history(self._entry(instr, empty=empty)))

    def _entry(self, instr: ins.Instruction, *, empty: bool) -> History:
        return History(
            created_by=ins.describe(instr),
            created=self.created,
            comment=HISTORY_COMMENT,
            empty_layer=empty,
        )

    def pack(
        self,
        changes: list[Change],
        digests: dict[str, Digest] | None = None,
        known: Mapping[str, Digest] | None = None,
        previous: Layer | None = None,
        *,
        indexed: bool = False,
    ) -> Layer:
        """Pack `changes` into the store; with `digests`, the files' content digests are taken
        on the way and kept in `contents` (what a snapshot written from the Changes is checked
        against: only asked for when a RUN may need one). A file whose digest the key already
        `known`s is not hashed again when its lstat still holds after the read, unless it
        changed within the stat cache's racy margin (a write in the same timestamp tick would
        not move its ctime). With `splice` on, an `indexed` layer (a COPY's) keeps its entry
        index, and the entries that `previous` (the same step's layer of the last build) holds
        as they are now are copied from it rather than read (image/tarsplice.py): the same
        blob either way."""
        from layerbuild.image.tarsplice import SpliceSourceError  # a miss only, as _pack's
        from layerbuild.store.splicesource import splice_source

        settled_before = time.time_ns() - RACY_MARGIN_NS
        trusted = {
            c.path: known[c.path]
            for c in changes
            if known
            and c.path in known
            and isinstance(c.content, FileSource)
            and c.content.st.st_ctime_ns < settled_before
        }
        indexed = indexed and self.splice
        # an index needs every entry's digest, from the read that packs it
        taken = {} if digests is None and indexed else digests
        source = splice_source(self.store, previous, trusted) if indexed else None
        if source is not None and previous is not None and self.blocks is not None:
            self.blocks.preload(previous.digest)  # its blocks: most of the new layer's
        try:
            layer = self._pack(changes, taken, trusted, source, indexed)
        except SpliceSourceError:  # the previous layer cannot be read as its index says
            if taken is not None:
                taken.clear()  # the caller's dict, when it gave one
            layer = self._pack(changes, taken, trusted, None, indexed)
        finally:
            if source is not None:
                source.close()
        if digests is not None and taken is not None:
            self.contents[layer.diff_id] = taken
        return layer

    def _pack(
        self,
        changes: list[Change],
        digests: dict[str, Digest] | None,
        trusted: Mapping[str, Digest],
        source: SpliceSource | None,
        indexed: bool,
    ) -> Layer:
        from layerbuild.image.compress import BlockRecord, pack_layer  # codecs: on a miss only
        from layerbuild.image.tarsplice import EntryLog
        from layerbuild.store import tarindex

        index: list[BlockRecord] = []
        log = EntryLog() if indexed and digests is not None else None
        with self.store.content.ingest() as ingest:
            layer = pack_layer(
                changes,
                ingest,
                compression=self.compression,
                source_date_epoch=self.source_date_epoch,
                digests=digests,
                known=trusted if digests is not None else None,
                blocks=self.blocks,
                index=index,
                splice=source.splice if source is not None else None,
                log=log,
            )
            if source is not None:
                source.check()  # before the commit: a damaged old blob leaves nothing behind
            ingest.commit(expected=layer.digest)
        if self.blocks is not None:
            self.blocks.record(layer.digest, index)
        if log is not None:
            tarindex.save(self.store, layer.digest, log.index())
        if source is not None:
            self.splices.add(source.splice)
        return layer

    def close(self) -> None:
        """The build is over: append the splice counters to `splice_stats`, if asked."""
        if self.splice_stats is not None:
            self.splices.write(self.splice_stats)
            self.splice_stats = None

    def add_layer(
        self,
        state: StageState,
        instr: ins.Instruction,
        changes: list[Change],
        packed: Layer | None = None,
        *,
        digests: bool = False,
        known: Mapping[str, Digest] | None = None,
        previous: Layer | None = None,
        indexed: bool = False,
    ) -> tuple[StageState, Layer | None]:
        """The stage with `changes` packed as its next layer (`packed`: already), and that
        layer; none, only a history entry, when there are no changes. `previous` and
        `indexed`: as for `pack` (a COPY's layer)."""
        if not changes:
            return self.history(state, instr, empty=True), None
        layer = packed or self.pack(
            changes, {} if digests else None, known, previous, indexed=indexed
        )
        entry = self._entry(instr, empty=False)
        config = state.meta.config.with_layer(layer.diff_id, entry)
        return state.with_layer(layer, replace(state.meta, config=config)), layer


def file_digests(changes: list[Change], files: Mapping[str, str]) -> dict[str, Digest]:
    """The content digest of each file of `changes`, from a COPY's per-path summaries
    (context/hashing.py: ``"sha256:… 0644 0:0"``)."""
    out: dict[str, Digest] = {}
    new_digest = str.__new__  # the summaries are changes_digest's: parsing each is per-file cost
    for c in changes:
        if c.kind is ChangeKind.FILE:
            summary = files.get(c.path)
            if summary is None:
                continue
            if summary[71:72] == " " and summary[:7] == "sha256:":  # "sha256:<64 hex> 0644 0:0"
                out[c.path] = new_digest(Digest, summary[:71])
            else:
                out[c.path] = Digest(summary.partition(" ")[0])
    return out
