"""The speed-ups a build runs with: `ActiveSpeedups` assembles the real ones, each part on or
off by its BuildOptions field (set by cli/build.py from the environment; docs/cache.md,
"Speed-ups"); `speedups_for` gives `NullSpeedups` when every one is off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from layerbuild.digest import Digest
from layerbuild.dockerfile import instructions as ins
from layerbuild.engine.filesteps import FileSteps, QuickKey
from layerbuild.engine.options import BuildOptions
from layerbuild.engine.speedups.base import Found, NullSpeedups, Snapshot, Speedups
from layerbuild.engine.speedups.copykeys import CopyKeys
from layerbuild.engine.speedups.runahead import RunAheads
from layerbuild.engine.state import StageState
from layerbuild.image.changes import Change
from layerbuild.image.manifest import Layer
from layerbuild.plan.graph import ImageBase, StageBase

if TYPE_CHECKING:
    from layerbuild.context.prefetch import ListingPrefetch
    from layerbuild.context.statcache import StatCache
    from layerbuild.engine.layerwriter import LayerWriter
    from layerbuild.engine.runstep import RunResult
    from layerbuild.engine.runsteps import RunSteps
    from layerbuild.engine.stepcache import StepCache
    from layerbuild.store.layers import LayerSnapshots

    # what the COPY shortcuts work with: the build's stat cache, step cache, layer writer
    # and snapshots
    BuildParts = tuple[StatCache, StepCache, LayerWriter, LayerSnapshots]


def speedups_for(
    options: BuildOptions, parts: BuildParts, prefetch: ListingPrefetch | None
) -> Speedups:
    """The speed-ups `options` turn on, over the build's `parts`; `prefetch`: the context
    walked ahead by the CLI."""
    if not (
        options.quick_keys
        or options.speculative_packing
        or options.snapshots_ahead
        or options.run_ahead
        or options.splice
    ):
        return NullSpeedups()
    copies = CopyKeys(*parts, ahead=options.snapshots_ahead)
    return ActiveSpeedups(
        copies,
        prefetch,
        quick_keys=options.quick_keys,
        speculative_packing=options.speculative_packing,
        run_ahead_on=options.run_ahead,
        splice_on=options.splice,
    )


@dataclass
class ActiveSpeedups:
    """The speed-ups a build has turned on, behind one interface."""

    copies: CopyKeys  # quick hits; snapshots written ahead unless copies.ahead is False
    prefetch: ListingPrefetch | None  # the context's listing, for quick keys of literal sources
    quick_keys: bool = True
    speculative_packing: bool = True
    run_ahead_on: bool = True
    splice_on: bool = True

    def __post_init__(self) -> None:
        self._ahead = RunAheads(self.copies)

    def quick_key(
        self,
        files: FileSteps,
        state: StageState,
        instr: ins.Copy | ins.Add,
        source: StageBase | ImageBase | None,
    ) -> QuickKey | None:
        if not self.quick_keys:
            return None
        return files.quick_key(state, instr, source, self.prefetch)

    def quick_hit(
        self, state: StageState, quick: QuickKey, inputs: list[tuple[str, str]]
    ) -> Found | None:
        return self.copies.quick_hit(state, quick, inputs)

    def remember(self, quick: QuickKey, digest: Digest) -> None:
        self.copies.remember(quick, digest)

    def start_snapshot(
        self,
        stage: str,
        index: int,
        changes: list[Change],
        files: dict[str, str] | None,
        expected: dict[str, Digest] | None,
    ) -> None:
        self.copies.start_snapshot(stage, index, changes, files, expected)

    def pending_snapshot(self) -> Snapshot | None:
        return self.copies.pending_snapshot()

    def offer_snapshot(
        self, stage: str, index: int, layer: Layer, changes: list[Change], files: dict[str, str]
    ) -> None:
        self.copies.offer_snapshot(stage, index, layer, changes, files)

    def drop_pending(self) -> None:
        self.copies.drop_pending()

    def splice_from(self, stage: str, index: int) -> Layer | None:
        if not self.splice_on:
            return None
        record = self.copies.cache.previous_record(stage, index)
        return record.layer if record is not None else None

    def run_ahead(
        self,
        runs: RunSteps,
        state: StageState,
        instr: ins.Instruction | None,
        key: Digest,
        changes: list[Change],
        snapshot: Snapshot | None,
    ) -> None:
        if self.run_ahead_on:  # off, nothing was started to be dropped
            self._ahead.start(runs, state, instr, key, changes, snapshot)

    def take_ahead(
        self, runs: RunSteps, state: StageState, key: Digest, step_id: int
    ) -> RunResult | None:
        return self._ahead.take(runs, state, key, step_id)

    def write_snapshots(self, layers: Sequence[Layer]) -> None:
        self.copies.write_snapshots(layers)

    def close(self) -> None:
        self._ahead.close()
        self.copies.close()
