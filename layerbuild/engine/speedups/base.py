"""The `Speedups` contract, and `NullSpeedups`: the build with every speed-up off.

Each hook is named after what the engine does at that point; none of them may change a
key, a layer or a report, only how soon they are known (tests/integration/
test_speedups_equivalence.py builds with NullSpeedups and with every speed-up on and
compares). Packing decisions are two flags read when the build's LayerWriter is made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from layerbuild.digest import Digest
from layerbuild.dockerfile import instructions as ins
from layerbuild.engine.filesteps import FileSteps, QuickKey
from layerbuild.engine.state import StageState
from layerbuild.image.changes import Change
from layerbuild.image.manifest import Layer
from layerbuild.plan.graph import ImageBase, StageBase
from layerbuild.plan.keys import CacheKey
from layerbuild.store.cacheindex import CacheRecord

if TYPE_CHECKING:
    from layerbuild.engine.runstep import RunResult
    from layerbuild.engine.runsteps import RunSteps

Found = tuple[CacheKey, CacheRecord]
# waits for a snapshot being written: its directories, top-most first (None: not written)
Snapshot = Callable[[], tuple[Path, ...] | None]


class Speedups(Protocol):
    @property
    def speculative_packing(self) -> bool:
        """Whether a cold COPY is packed before its key, its digests taken from that read."""
        ...

    def quick_key(
        self,
        files: FileSteps,
        state: StageState,
        instr: ins.Copy | ins.Add,
        source: StageBase | ImageBase | None,
    ) -> QuickKey | None:
        """A COPY summed up from names and lstat alone; None: read its sources."""
        ...

    def quick_hit(
        self, state: StageState, quick: QuickKey, inputs: list[tuple[str, str]]
    ) -> Found | None:
        """The key and record of a COPY whose selection is unchanged since its sources
        digest was recorded; None: build its Changes."""
        ...

    def remember(self, quick: QuickKey, digest: Digest) -> None:
        """The sources digest of a COPY, for its quick key next time."""
        ...

    def start_snapshot(
        self,
        stage: str,
        index: int,
        changes: list[Change],
        files: dict[str, str] | None,
        expected: dict[str, Digest] | None,
    ) -> None:
        """A COPY layer is about to be packed with a RUN after it: its snapshot may be
        written from `changes` meanwhile."""
        ...

    def pending_snapshot(self) -> Snapshot | None:
        """The snapshot being written for the step at hand."""
        ...

    def offer_snapshot(
        self, stage: str, index: int, layer: Layer, changes: list[Change], files: dict[str, str]
    ) -> None:
        """A COPY `layer` is packed: a RUN that needs it as a lower may get its tree from the
        Changes rather than from unpacking the blob."""
        ...

    def drop_pending(self) -> None:
        """The COPY hit after all: a snapshot begun for it is not needed."""
        ...

    def splice_from(self, stage: str, index: int) -> Layer | None:
        """The layer the COPY at (`stage`, `index`) made in the last build, for its new layer
        to copy the unchanged entries' bytes from (image/tarsplice.py); None: read them all."""
        ...

    def run_ahead(
        self,
        runs: RunSteps,
        state: StageState,
        instr: ins.Instruction | None,
        key: Digest,
        changes: list[Change],
        snapshot: Snapshot | None,
    ) -> None:
        """The COPY keyed `key` missed: the RUN `instr` after it may start on its snapshot."""
        ...

    def take_ahead(
        self, runs: RunSteps, state: StageState, key: Digest, step_id: int
    ) -> RunResult | None:
        """What ran ahead for the RUN step keyed `key`, if valid; None: run it."""
        ...

    def write_snapshots(self, layers: Sequence[Layer]) -> None:
        """A RUN is about to run over `layers`: write the snapshots of this build's COPY layers
        among them from their Changes (the store would unpack them from their blobs)."""
        ...

    def close(self) -> None:
        """The build is over: stop and remove what was started for it."""
        ...


class NullSpeedups:
    """Every speed-up off: each COPY reads its sources, each lower is unpacked from its blob,
    each RUN runs at its step. What the others must build exactly alike."""

    speculative_packing = False

    def quick_key(
        self,
        files: FileSteps,
        state: StageState,
        instr: ins.Copy | ins.Add,
        source: StageBase | ImageBase | None,
    ) -> QuickKey | None:
        return None

    def quick_hit(
        self, state: StageState, quick: QuickKey, inputs: list[tuple[str, str]]
    ) -> Found | None:
        return None

    def remember(self, quick: QuickKey, digest: Digest) -> None:
        pass

    def start_snapshot(
        self,
        stage: str,
        index: int,
        changes: list[Change],
        files: dict[str, str] | None,
        expected: dict[str, Digest] | None,
    ) -> None:
        pass

    def pending_snapshot(self) -> Snapshot | None:
        return None

    def offer_snapshot(
        self, stage: str, index: int, layer: Layer, changes: list[Change], files: dict[str, str]
    ) -> None:
        pass

    def drop_pending(self) -> None:
        pass

    def splice_from(self, stage: str, index: int) -> Layer | None:
        return None

    def run_ahead(
        self,
        runs: RunSteps,
        state: StageState,
        instr: ins.Instruction | None,
        key: Digest,
        changes: list[Change],
        snapshot: Snapshot | None,
    ) -> None:
        pass

    def take_ahead(
        self, runs: RunSteps, state: StageState, key: Digest, step_id: int
    ) -> RunResult | None:
        return None

    def write_snapshots(self, layers: Sequence[Layer]) -> None:
        pass

    def close(self) -> None:
        pass
