"""The two shortcuts of a COPY step around the executor's cache lookup.

Before: a COPY whose selection (names and lstat of what it reads, `FileSteps.quick_key`) is
the one a sources digest was recorded for is keyed with that digest, without building its
Changes or reading a file. After a miss: the layer just packed is offered to the layer
snapshots, so a RUN on top of it gets its overlay lower written from the Changes (hard links
into the previous build's snapshot of the same step) instead of unpacking the blob.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from layerbuild.build.filesteps import QuickKey, StageState
from layerbuild.build.layerwriter import LayerWriter
from layerbuild.build.stepcache import StepCache, chain
from layerbuild.context.statcache import StatCache
from layerbuild.digest import Digest
from layerbuild.image.changes import Change
from layerbuild.image.manifest import Layer
from layerbuild.plan.keys import CacheKey
from layerbuild.store.cacheindex import CacheRecord
from layerbuild.store.layers import LayerSnapshots
from layerbuild.store.materialize import Previous, materialize


@dataclass
class CopyKeys:
    statcache: StatCache
    cache: StepCache
    layers: LayerWriter
    snaps: LayerSnapshots

    def quick_hit(
        self, state: StageState, quick: QuickKey, inputs: list[tuple[str, str]]
    ) -> tuple[CacheKey, CacheRecord] | None:
        """The key and cache record of a COPY whose selection is unchanged since its sources
        digest was recorded. None sends the step down the full path: no digest recorded, or
        its key no longer cached (a pruned layer must be rebuilt from the Changes)."""
        digest = self.statcache.selection_digest(quick.digest)
        if digest is None:
            return None
        key = chain(state.key, [*inputs, ("from", quick.source_key), ("sources", str(digest))])
        record = self.cache.lookup(state.name, key)
        return (key, record) if record is not None else None

    def remember(self, quick: QuickKey, digest: Digest) -> None:
        self.statcache.remember_selection(
            quick.digest, digest, newest_ns=quick.newest_ns, taken_ns=quick.taken_ns
        )

    def offer_snapshot(
        self, stage: str, index: int, layer: Layer, changes: list[Change], files: dict[str, str]
    ) -> None:
        """Should a RUN need this COPY layer as an overlay lower, write it from its Changes
        (store/materialize.py) rather than unpacking the blob just packed."""
        packed = self.layers.contents.get(layer.diff_id)
        if self.snaps.rootless or packed is None:
            return
        previous = None
        record = self.cache.previous_record(stage, index)
        if record is not None and record.layer is not None:
            root = self.snaps.find(record.layer.diff_id)
            previous = Previous(root, record.files) if root is not None else None
        self.snaps.builders[layer.diff_id] = functools.partial(
            materialize,
            changes,
            files=files,
            packed=packed,
            epoch=self.layers.source_date_epoch,
            previous=previous,
        )
