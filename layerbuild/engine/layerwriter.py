"""Turning a step's Changes into a layer of its stage: packing into the store, the config's
diff_ids and history, and the content digest a COPY's cache key needs (taken from the packing
read itself when the context was never seen before)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

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

HISTORY_COMMENT = "layerbuild.dockerfile.v0"
# below this many unread bytes, hashing first and packing only on a miss is cheap enough
_SPECULATE_BYTES = 8 << 20


@dataclass
class LayerWriter:
    store: Store
    statcache: StatCache
    compression: str
    source_date_epoch: int | None
    created: str  # the history timestamp of this build's steps
    # diff_id -> layer path -> digest of the file content packed there (store/materialize.py)
    contents: dict[Digest, dict[str, Digest]] = field(default_factory=dict)
    blocks: BlockCache | None = None  # gzip blocks of earlier layers, reused when packing

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
        packed = self.pack(changes, digests)
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
    ) -> Layer:
        """Pack `changes` into the store; with `digests`, the files' content digests are taken
        on the way and kept in `contents` (what a snapshot written from the Changes is checked
        against: only asked for when a RUN may need one). A file whose digest the key already
        `known`s is not hashed again when its lstat still holds after the read, unless it
        changed within the stat cache's racy margin (a write in the same timestamp tick would
        not move its ctime)."""
        from layerbuild.image.compress import BlockRecord, pack_layer  # codecs: on a miss only

        settled_before = time.time_ns() - RACY_MARGIN_NS
        trusted = {
            c.path: known[c.path]
            for c in changes
            if known
            and c.path in known
            and isinstance(c.content, FileSource)
            and c.content.st.st_ctime_ns < settled_before
        }
        index: list[BlockRecord] = []
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
            )
            ingest.commit(expected=layer.digest)
        if digests is not None:
            self.contents[layer.diff_id] = digests
        if self.blocks is not None:
            self.blocks.record(layer.digest, index)
        return layer

    def add_layer(
        self,
        state: StageState,
        instr: ins.Instruction,
        changes: list[Change],
        packed: Layer | None = None,
        *,
        digests: bool = False,
        known: Mapping[str, Digest] | None = None,
    ) -> tuple[StageState, Layer | None]:
        """The stage with `changes` packed as its next layer (`packed`: already), and that
        layer; none, only a history entry, when there are no changes."""
        if not changes:
            return self.history(state, instr, empty=True), None
        layer = packed or self.pack(changes, {} if digests else None, known)
        entry = self._entry(instr, empty=False)
        config = state.meta.config.with_layer(layer.diff_id, entry)
        return state.with_layer(layer, replace(state.meta, config=config)), layer


def file_digests(changes: list[Change], files: Mapping[str, str]) -> dict[str, Digest]:
    """The content digest of each file of `changes`, from a COPY's per-path summaries
    (context/hashing.py: ``"sha256:… 0644 0:0"``)."""
    return {
        c.path: Digest(files[c.path].split(" ", 1)[0])
        for c in changes
        if c.kind is ChangeKind.FILE and c.path in files
    }
