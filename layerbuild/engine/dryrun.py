"""`build --dry-run`: every step keyed and looked up as the build would, none run, and nothing
written to the store but the stat cache.

It is the executor's own step loop (engine/executor.py) with another step: on a hit the op's
`reuse` takes the record (nothing runs); on a miss a config-only step (ENV, LABEL, ARG, CMD, a
WORKDIR whose directory exists) still runs, since it only changes the config, while a step that
would make a layer (COPY, ADD, RUN, WORKDIR) leaves a *gap*: what comes after it in its stage
can no longer be looked up, as its parent result does not exist. What follows a gap is

- `miss: parent step missed` when the missed step's key was never recorded (no record of it on
  any result): every key after it chains a new key, so nothing after it can hit;
- `unknown` when the key is recorded but its record cannot be used here (another result of the
  step before, a pruned layer): the step runs again, and whether what follows hits depends on
  whether it gives the same result; also after a step that needs a result only running gives
  (a base image not in the store, `ADD <url>`, a COPY --from or RUN --mount from= a stage that
  would be rebuilt, files a build would unpack first).

A stage whose cache is disabled (--no-cache, --no-cache-filter) misses at every step, but its
records are still followed (StepCache.peek), so the keys after it are the build's; the stages
that use its result are `unknown` where a record would be taken, as a rebuilt stage may give
other files. A stage `FROM` a stage with a gap starts with that gap (its root key is the other
stage's last key); its FROM step misses when that stage's keys would be new.

Writes: no layer, record, image, tag, "last build" record, snapshot, layer entries file, nor
cache import/export; speculative packing and the snapshots written ahead are off. The stat
cache (file digests, COPY selections) is written as a build writes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from layerbuild.context.filesource import FileSource
from layerbuild.context.gitref import is_git_url
from layerbuild.digest import Digest
from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.scope import VarScope, unused_build_args
from layerbuild.engine import dryrunhints as hints
from layerbuild.engine import meta as m
from layerbuild.engine.events import BuildEvent, Log, StepDone
from layerbuild.engine.executor import Executor, StepOutcome
from layerbuild.engine.ops.base import Done, Prepared, Step
from layerbuild.engine.ops.copy import CopyPrepared
from layerbuild.engine.ops.meta import MetaOp
from layerbuild.engine.options import BuildOptions
from layerbuild.engine.sources import Unavailable
from layerbuild.engine.state import StageState
from layerbuild.image.changes import ChangeKind
from layerbuild.plan.graph import BuildGraph, ImageBase, PlannedStage, StageBase
from layerbuild.plan.keys import changed_files
from layerbuild.store.layout import Store

if TYPE_CHECKING:
    from layerbuild.context.prefetch import ListingPrefetch

PARENT_MISSED = "parent step missed"  # plan/keys.explain's words for the same case
_NO_KEY = Digest("sha256:" + "0" * 64)  # the key of a stage whose base cannot be keyed


@dataclass(frozen=True)
class Gap:
    """Why the rest of a stage is not looked up as the build would look it up."""

    unknown: bool  # True: only running tells; False: they miss (their keys chain a new one)
    reason: str  # what the steps after it say
    keyed: bool = False  # the state is still keyed as a build's (a disabled stage's records)


def dry_options(options: BuildOptions) -> BuildOptions:
    """`options` for a dry run: the speed-ups that write (packing ahead, snapshots, RUNs run
    ahead, reused gzip blocks) are off; quick COPY keys stay (they write the stat cache)."""
    return replace(
        options,
        dry_run=True,
        speculative_packing=False,
        snapshots_ahead=False,
        run_ahead=False,
        block_reuse=False,
    )


def dry_run(
    store: Store,
    options: BuildOptions,
    emit: Callable[[BuildEvent], None] = lambda e: None,
    prefetch: ListingPrefetch | None = None,
) -> None:
    """Key and look up every step of `options`' build, as events (StepDone: cached, unknown,
    reason, details); run none."""
    DryRun(store, dry_options(options), emit, prefetch).run()


class DryRun(Executor):
    def run(self) -> None:
        graph, _ = self._prepare()
        self.gaps: dict[int, Gap | None] = {}  # stage index -> the gap it ended with
        self.gap: Gap | None = None  # the current stage's
        try:
            with self.store.lock(shared=True):  # as a build: gc does not run meanwhile
                self._stages(graph)
        finally:
            self._close()

    def _stages(self, graph: BuildGraph) -> None:
        if self.options.cache_from:
            self.emit(
                Log(
                    None,
                    "note: --cache-from is not imported by a dry run (importing writes records "
                    "into the store): the verdicts are those of the local cache",
                )
            )
        for planned in graph.stages:
            self.planned = planned
            self.results[planned.index] = self._run_stage(planned, graph)
            self.gaps[planned.index] = self.gap
        unused = unused_build_args(self.dockerfile, self.options.build_args)
        if unused:
            names = ", ".join(unused)
            self.emit(Log(None, f"warning: build args not consumed by any ARG: {names}"))

    # -- FROM ----------------------------------------------------------------------------------

    def _from(self, planned: PlannedStage, total: int) -> StageState:
        self.gap = None
        found = self._base_gap(planned)
        if found is None:
            return super()._from(planned, total)
        from_reason, gap = found
        self.gap = gap
        if gap.keyed:  # the base stage's keys are the build's: FROM is judged by its key
            return super()._from(planned, total)
        stage = planned.stage
        name = stage.name or f"stage-{stage.index}"
        step_id = self._start(name, 1, total, stage.from_)
        # as the build judges FROM: a hit unless its key changed since the last build
        hit = not gap.unknown and (name, 1) not in self.cache.previous
        reason = "" if hit else from_reason
        self.emit(StepDone(step_id, 0.0, cached=hit, reason=reason, unknown=gap.unknown))
        platform = self._stage_platform(planned)
        config = m.new_stage_config(None, platform.architecture, platform.os)
        scope = VarScope.for_stage(self.global_args, self.options.build_args, {})
        return StageState(name, m.StageMeta(config), (), scope, _NO_KEY)

    def _base_gap(self, planned: PlannedStage) -> tuple[str, Gap] | None:
        """(the FROM step's reason, the stage's gap) when its base is not what a build has."""
        base = planned.base
        if isinstance(base, ImageBase):
            try:
                platform = self._stage_platform(planned)
                self.sources.image(base.ref, named_context=base.named_context, platform=platform)
            except Unavailable as e:
                return e.reason, Gap(True, e.reason)
            return None
        if not isinstance(base, StageBase) or self.gaps.get(base.index) is None:
            return None
        gap = self.gaps[base.index]
        assert gap is not None
        name = self.results[base.index].name
        if gap.keyed:
            why = f"stage {name} would be rebuilt: whether this hits depends on its result"
            return "", Gap(True, why, keyed=True)
        if gap.unknown:
            why = f"stage {name} cannot be keyed without running it"
            return why, Gap(True, why)
        return f"stage {name} would be rebuilt with new keys", Gap(False, PARENT_MISSED)

    # -- one step ------------------------------------------------------------------------------

    def _step(
        self,
        state: StageState,
        instr: ins.Instruction,
        source: StageBase | ImageBase | None,
        index: int,
        step_id: int,
    ) -> tuple[StageState, StepOutcome]:
        disabled = self.cache.disabled or state.name in self.cache.disabled_stages
        if self.gap is not None and not self.gap.keyed:
            reason = self.cache.disabled_reason(state.name) or self.gap.reason
            if reason == PARENT_MISSED and (state.name, index) not in self.cache.previous:
                reason = "no previous build of this step"  # as plan/keys.explain says it
            unknown = self.gap.unknown and not disabled
            return state, StepOutcome(None, False, reason=reason, unknown=unknown)
        op = self.ops[type(instr)]
        step = Step(state, instr, source, index, step_id, self.at.run_follows, self.at.next_instr)
        try:
            self._check_inputs(instr, source)
            prepared = op.prepare(step)
        except Unavailable as e:
            line = instr.span.start_line
            why = f"follows a step that cannot be keyed without running (line {line})"
            self.gap = Gap(True, why)
            # a disabled stage misses whatever its inputs are
            reason = self.cache.disabled_reason(state.name) or e.reason
            return state, StepOutcome(None, False, reason=reason, unknown=not disabled)
        key, record = prepared.found or self._lookup(state, op.cache_inputs(state, prepared))
        if record is None and disabled:
            record = self.cache.peek(key, state.meta.config)
            if record is not None:  # the keys after it stay the build's; its result may not
                why = f"stage {state.name} would be rebuilt: whether this hits depends on it"
                self.gap = Gap(True, why, keyed=True)
        if record is not None:
            done = op.reuse(step, prepared, record)
            hit = not disabled and self.gap is None
            unknown = not disabled and self.gap is not None
            reason = self.cache.disabled_reason(state.name) or _gap_reason(self.gap, hit)
            outcome = StepOutcome(key, hit, reason=reason, unknown=unknown)
            return self._advance(state, done, key, outcome)
        return self._missed(step, prepared, key, disabled)

    def _missed(
        self, step: Step, prepared: Prepared, key: Any, disabled: bool
    ) -> tuple[StageState, StepOutcome]:
        """A step with no usable record: what the build would say, and what follows it."""
        state, instr, index = step.state, step.instr, step.index
        reason = self.cache.reason(state.name, index, key, prepared.files)
        recorded = bool(self.cache.index.with_key(key.digest))
        if self.gap is not None and recorded and not disabled:
            # on a rebuilt stage's result a recorded key may hit or not: only running tells
            self.gap = Gap(True, self.gap.reason)
            return state, StepOutcome(key, False, reason=self.gap.reason, unknown=True)
        details = self._copy_details(step, prepared) if isinstance(prepared, CopyPrepared) else ()
        outcome = StepOutcome(key, False, reason=reason, details=details)
        if self._config_only(step, prepared):
            done = self.ops[type(instr)].execute(step, prepared, key)
            return self._advance(state, done, key, outcome)
        line = instr.span.start_line
        self.gap = (
            Gap(True, f"the step at line {line} would run again: whether this hits depends on it")
            if recorded
            else Gap(False, PARENT_MISSED)
        )
        return state.with_key(key.digest), outcome

    def _advance(
        self, state: StageState, done: Done, key: Any, outcome: StepOutcome
    ) -> tuple[StageState, StepOutcome]:
        self.files.trees.advance(state, done.state, done.changes)
        layer = done.layer.digest if done.layer else None
        return done.state.with_key(key.digest), replace(outcome, layer=layer, note=done.note)

    def _config_only(self, step: Step, prepared: Prepared) -> bool:
        """Whether the missed step only changes the config (it is run then: nothing written)."""
        if isinstance(self.ops[type(step.instr)], MetaOp):
            return True
        if isinstance(prepared.instr, ins.Workdir):  # a layer only when its directory is missing
            return not self.files.workdir_changes(step.state, prepared.instr)
        return False

    def _check_inputs(self, instr: ins.Instruction, source: StageBase | ImageBase | None) -> None:
        """Raise Unavailable when the step reads what a dry run does not have."""
        if isinstance(instr, ins.Add):
            remote = [s for s in instr.sources if s.startswith(("http://", "https://"))]
            if remote:
                raise Unavailable(f"ADD {remote[0]}: a build would download it to key it")
            if any(is_git_url(s) for s in instr.sources):
                raise Unavailable("ADD from git: a build would fetch it to key it")
        position = next(
            (i for i, x in enumerate(self.planned.stage.instructions) if x is instr), None
        )
        reads = [source] + [s for i, _, s in self.planned.mount_from if i == position]
        for read in reads:
            if isinstance(read, StageBase) and self.gaps.get(read.index) is not None:
                name = self.results[read.index].name
                raise Unavailable(f"reads stage {name}, which would be rebuilt")

    def _copy_details(self, step: Step, prepared: CopyPrepared) -> tuple[str, ...]:
        """The files a missed COPY changed, and the .dockerignore hints (engine/dryrunhints)."""
        old = self.cache.previous_record(step.state.name, step.index)
        if old is None or prepared.files is None:
            return ()
        changed = changed_files(old.files, prepared.files)
        lines = hints.files_lines(changed) if len(changed) > 1 else []  # one: the reason says it
        instr = prepared.instr
        if not isinstance(instr, ins.Copy | ins.Add) or instr.from_stage is not None:
            return tuple(lines)
        if not hints.whole_context(instr.sources):
            return tuple(lines)
        from_context = _context_paths(prepared, str(self.options.context))
        steps = [i for s in self.dockerfile.stages for i in s.instructions if i is not step.instr]
        readers = hints.context_readers(steps)
        last = len(self.planned.stage.instructions) + 1 + len(step.state.triggers)
        found = [
            rel
            for line in changed
            if line.endswith((" changed", " added"))
            and (rel := from_context.get(line[1:].rsplit(" ", 1)[0])) is not None
            and not hints.is_read(rel, readers)
        ]
        for rel in found[: hints.MAX_HINTS]:
            lines.append(hints.ignore_hint(rel, step.instr, step.index, last))
        return tuple(lines)


def _context_paths(prepared: CopyPrepared, context: str) -> dict[str, str]:
    """Layer path -> context-relative path of each file a COPY takes from the context."""
    out: dict[str, str] = {}
    top = context.rstrip("/") + "/"
    for change in prepared.changes or ():
        if change.kind is ChangeKind.FILE and isinstance(change.content, FileSource):
            path = str(change.content.path)
            if path.startswith(top):
                out[change.path] = path[len(top) :]
    return out


def _gap_reason(gap: Gap | None, hit: bool) -> str:
    return "" if hit or gap is None else gap.reason
