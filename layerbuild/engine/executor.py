"""The executor: walks the build graph stage by stage and turns each step into config or layers.

Orchestration only. Parsing, planning, expansion, COPY semantics, tar writing and the store are
other modules; this one calls them in order and reports progress as events. Nothing is tagged
until every step succeeded, so a failed build leaves the previous image of a tag intact; blobs
it wrote are complete (the store commits them atomically) and unreferenced until gc.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from layerbuild.context.statcache import StatCache
from layerbuild.digest import Digest
from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.parser import parse_trigger
from layerbuild.dockerfile.scope import VarScope, global_arg_values, unused_build_args
from layerbuild.engine import events
from layerbuild.engine import meta as m
from layerbuild.engine.buildchecks import check_build
from layerbuild.engine.events import BuildDone, BuildEvent, Log, StepDone, StepStarted
from layerbuild.engine.failures import expect_cached, reported, step_name
from layerbuild.engine.filesteps import FileSteps
from layerbuild.engine.inputs import context_ignore, read_dockerfile
from layerbuild.engine.layerfiles import LayerFiles, parent_lookup, summarize
from layerbuild.engine.layerwriter import LayerWriter
from layerbuild.engine.ops import ops_for
from layerbuild.engine.ops.base import Step
from layerbuild.engine.options import BuildOptions, BuildResult
from layerbuild.engine.platforms import check_platform, host_platform, stage_platform
from layerbuild.engine.runsteps import RunSteps
from layerbuild.engine.sources import SourceResolver, base_layers
from layerbuild.engine.speedups.active import speedups_for
from layerbuild.engine.speedups.base import Speedups
from layerbuild.engine.state import StageState
from layerbuild.engine.stepcache import StepCache, build_identity, chain
from layerbuild.errors import BuildError, UnsupportedError
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Descriptor, Platform
from layerbuild.image.manifest import Layer
from layerbuild.plan.graph import BuildGraph, ImageBase, PlannedStage, ScratchBase, StageBase, plan
from layerbuild.plan.keys import CacheKey, Inputs
from layerbuild.registry.reference import normalize_tag
from layerbuild.store import images
from layerbuild.store.blockcache import BlockCache
from layerbuild.store.cacheindex import CacheRecord
from layerbuild.store.crashsafe import scratch_dir
from layerbuild.store.layers import LayerSnapshots
from layerbuild.store.layout import Store

if TYPE_CHECKING:
    from layerbuild.context.prefetch import ListingPrefetch
    from layerbuild.sandbox.cancel import Cancel


def build(
    store: Store,
    options: BuildOptions,
    emit: Callable[[BuildEvent], None] = lambda e: None,
    prefetch: ListingPrefetch | None = None,
) -> BuildResult:
    """Build the Dockerfile of `options` into `store`, tag it, and return the image.
    `prefetch`: the context, walked ahead while the builder was imported (the CLI's)."""
    return Executor(store, options, emit, prefetch).build()


class Executor:
    def __init__(
        self,
        store: Store,
        options: BuildOptions,
        emit: Callable[[BuildEvent], None],
        prefetch: ListingPrefetch | None = None,
        cancel: Cancel | None = None,  # stops its RUN steps from outside (multiplatform.py)
    ):
        self.store, self.prefetch, self.cancel = store, prefetch, cancel
        # absolute: the sandbox resolves bind sources from another working directory
        self.options = replace(options, context=options.context.absolute())
        self.emit = events.serialized(emit)  # stages run on threads (engine/scheduler.py)
        self.started = time.monotonic()
        epoch = options.source_date_epoch
        self.now = epoch if epoch is not None else int(time.time())
        self.created = datetime.fromtimestamp(self.now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.step_ids = itertools.count(1)
        self.results: dict[int, StageState] = {}
        self.saved: list[float] = []  # seconds the cache saved, by the previous build's times
        self.statcache = StatCache(store.stat_db, stats_file=options.statcache_stats)
        self.snaps = LayerSnapshots(store.root)
        self.blocks = (
            BlockCache(store.blocks_db, store.content.path, stats_file=options.blockcache_stats)
            if options.block_reuse
            else None
        )
        self.layers = LayerWriter(
            store,
            self.statcache,
            options.compression,
            options.source_date_epoch,
            self.created,
            blocks=self.blocks,
            splice=options.splice, splice_stats=options.splice_stats,
        )
        self.speedups: Speedups  # set with the step cache, once the Dockerfile is read
        self.at = threading.local()  # a stage's thread: run_follows, next_instr of its step

    # -- the whole build ---------------------------------------------------------------------

    def build(self) -> BuildResult:
        graph, tags = self._prepare()
        # shared: other builds run alongside; gc (exclusive) waits until this build has tagged
        try:
            with self.store.lock(shared=True):
                return self._build_graph(graph, tags)
        finally:
            self._close()

    def _prepare(self) -> tuple[BuildGraph, tuple[str, ...]]:
        """Read the Dockerfile, plan it, and make the parts the steps run with."""
        dockerfile = read_dockerfile(self.options)
        self.dockerfile = dockerfile
        tags = tuple(normalize_tag(t) for t in self.options.tags)
        graph = plan(
            dockerfile,
            target=self.options.target,
            build_args=self.options.build_args,
            named_contexts=tuple(self.options.build_contexts),
            platform=self.options.platform,
            build_platform=host_platform(),
        )
        self.global_args = global_arg_values(
            dockerfile,
            self.options.build_args,
            self.options.platform,
            build_platform=host_platform(),
        )
        self.ignore = context_ignore(self.options)
        check_build(dockerfile, self.options, graph, self.store, self.ignore, self.emit)
        self.sources = SourceResolver(
            self.store,
            self.options.context,
            self.options.build_contexts,
            self.options.platform,
            self.options.registry,
            read_only=self.options.dry_run,
        )
        opts = self.options
        self.cache = StepCache(
            self.store,
            build_identity(opts.dockerfile, opts.context, opts.target, opts.platform),
            disabled=opts.no_cache,
            disabled_stages=frozenset(n.lower() for n in opts.no_cache_filter),
            warn=lambda message: self.emit(Log(None, f"warning: {message}")),
            read_only=opts.dry_run,
        )
        parts = (self.statcache, self.cache, self.layers, self.snaps)
        self.speedups = speedups_for(opts, parts, self.prefetch)
        self.scratch = scratch_dir(None if opts.dry_run else self.store.tmp_dir, "build-")
        self.files = FileSteps(
            self.store,
            self.sources,
            opts.context,
            self.ignore,
            Path(self.scratch.name),
            self.now,
            self.results,
            read_only=opts.dry_run,
        )
        self.runs = RunSteps(
            self.store,
            self.snaps,
            opts,
            self.files,
            self.sources,
            self.ignore,
            self.results,
            dockerfile.source.name,
            self.emit,
            self.layers.add_layer,
            self.cache,
            self.speedups,
            self.cancel,
        )
        self.ops = ops_for(dockerfile, self.files, self.layers, self.runs, self.speedups)
        return graph, tags

    def _close(self) -> None:
        self.speedups.close()
        self.statcache.close()
        if self.blocks is not None:
            self.blocks.close()
        self.layers.close()
        self.scratch.cleanup()

    def _build_graph(self, graph: BuildGraph, tags: tuple[str, ...]) -> BuildResult:
        opts, note = self.options, lambda message: self.emit(Log(None, message))
        if opts.cache_from:  # the remote cache's modules are imported only when asked for
            from layerbuild.registry.remotecache.importer import import_caches
            import_caches(self.store, opts.cache_from, opts.registry, note, self.emit)
        self._run_stages(graph)
        final = self.results[graph.target]
        # the image is as old as its newest step: a fully cached rebuild is the same image
        history = final.meta.config.history
        created = history[-1].created if history and history[-1].created else self.created
        config = m.with_labels(replace(final.meta.config, created=created), opts.labels)
        desc = images.write_image(self.store, config, final.layers, opts.annotations)
        for tag in tags:
            images.tag(self.store, tag, desc)
        self.cache.finish()
        if opts.cache_to:  # after the tags: a failed export (unless ignore-error) keeps the image
            from layerbuild.registry.remotecache.exporter import export_caches
            exported = (self.cache.steps, final.name, final.layers, opts.registry, note, self.emit)
            export_caches(self.store, opts.cache_to, *exported)
        if unused := unused_build_args(self.dockerfile, self.options.build_args):
            unconsumed = f"warning: build args not consumed by any ARG: {', '.join(unused)}"
            self.emit(Log(None, unconsumed))
        seconds = time.monotonic() - self.started
        self.emit(BuildDone(desc.digest, tags, seconds, saved=sum(self.saved)))
        return BuildResult(desc, config, tags, seconds)

    def _run_stages(self, graph: BuildGraph) -> None:
        run = functools.partial(self._run_stage, graph=graph)
        if self.options.jobs > 1 and len(graph.stages) > 1:
            from layerbuild.engine.scheduler import build_stages
            return build_stages(graph.stages, run, self.results, self.runs, self.cache)
        for planned in graph.stages:  # one after another, on this thread
            self.results[planned.index] = run(planned)

    # -- one stage -----------------------------------------------------------------------------

    def _run_stage(self, planned: PlannedStage, graph: BuildGraph) -> StageState:
        stage = planned.stage
        total = 1 if planned.replaced else len(stage.instructions) + 1
        state = self._from(planned, total)
        if planned.replaced:  # the named context is the stage: none of it runs, no trigger
            return state
        copy_from = dict(planned.copy_from)
        steps: list[tuple[int | None, ins.Instruction]] = [
            (None, self._trigger(text, stage.from_)) for text in state.triggers
        ]
        steps += list(enumerate(stage.instructions))
        total += len(state.triggers)
        for index, (position, instr) in enumerate(steps, start=2):
            step_id = self._start(state.name, index, total, instr)
            self.at.run_follows = any(isinstance(i, ins.Run) for _, i in steps[index - 1 :])
            self.at.next_instr = steps[index - 1][1] if index - 1 < len(steps) else None
            t0 = time.monotonic()
            with self._failing(step_id, t0, state.name, instr):
                source = copy_from.get(position) if position is not None else None
                state, out = self._step(state, instr, source, index, step_id)
            seconds = time.monotonic() - t0
            if out.key is not None:  # None: a dry run's step that cannot be keyed
                self.cache.note_step(state.name, index, out.key, seconds, out.hit)
            if out.hit:
                self.saved.append(self.cache.previous_seconds(state.name, index))
            key = out.key.digest if out.key is not None else None
            done = StepDone(step_id, seconds, out.layer, out.hit, out.note, key, out.reason)
            self.emit(replace(done, unknown=out.unknown, details=out.details, files=out.files))
        return state

    def _trigger(self, text: str, at: ins.From) -> ins.Instruction:
        """A base image's ONBUILD trigger, run as the first steps of this stage (as Docker
        does); errors point at the FROM line that inherited it."""
        trigger = parse_trigger(text, at.span, self.dockerfile.source, self.dockerfile.escape)
        if isinstance(trigger, ins.Copy) and trigger.from_stage:
            raise UnsupportedError(f"ONBUILD {text}: COPY --from in a trigger is not supported")
        return trigger

    def _failing(
        self, step_id: int, t0: float, stage: str, instr: ins.Instruction
    ) -> AbstractContextManager[None]:
        """Around a step: reports its failure (engine/failures.py)."""
        name = functools.partial(step_name, self.dockerfile.source.name, stage, instr)
        return reported(self.emit, step_id, t0, name, str(self.store.root))

    def _start(self, stage: str, index: int, total: int, instr: ins.Instruction) -> int:
        if self.runs.cancel is not None and self.runs.cancel.cancelled:
            raise BuildError("cancelled: another stage of the build failed")
        step_id, text = next(self.step_ids), " ".join(instr.original.split())
        self.emit(StepStarted(step_id, stage, index, total, instr.span.start_line, text))
        return step_id

    def _from(self, planned: PlannedStage, total: int) -> StageState:
        stage = planned.stage
        name = stage.name or f"stage-{stage.index}"
        step_id = self._start(name, 1, total, stage.from_)
        t0 = time.monotonic()
        with self._failing(step_id, t0, name, stage.from_):
            state, key = self._base(planned, name, step_id)
        # FROM does no work, so it "hits" unless the base changed since the last build of
        # this Dockerfile: a changed base is then named where it happened, not at step 2 as
        # "parent step missed"
        previous = self.cache.previous.get((name, 1))
        hit = previous is None or previous.key == str(key.digest)
        reason = "" if hit else self.cache.reason(name, 1, key)
        seconds = time.monotonic() - t0
        self.cache.note_step(name, 1, key, seconds, hit)
        self.emit(StepDone(step_id, seconds, cached=hit, key=key.digest, reason=reason))
        return state

    def _base(self, planned: PlannedStage, name: str, step_id: int) -> tuple[StageState, CacheKey]:
        platform = self._stage_platform(planned)
        base_config: ImageConfig | None
        layers: tuple[Layer, ...]
        inherited = None  # a stage's ARGs reach the stages built FROM it (BuildKit)
        if isinstance(planned.base, ScratchBase):
            base_config, layers, base_key = None, (), "scratch"
        elif isinstance(planned.base, StageBase):
            parent = self.results[planned.base.index]
            base_config, layers, base_key = parent.meta.config, parent.layers, parent.key
            inherited = parent.scope.args()
        else:
            desc, base_config, layers = self._base_image(planned.base, platform, step_id)
            base_key = str(desc.digest)
        config = m.new_stage_config(base_config, platform.architecture, platform.os)
        scope = VarScope.for_stage(
            self.global_args, self.options.build_args, config.config.env_dict(), inherited
        )
        key = CacheKey.of(
            [
                ("base", base_key),
                ("platform", str(platform)),
                ("compression", self.options.compression),
                ("epoch", str(self.options.source_date_epoch)),
            ]
        )
        triggers = base_config.config.on_build if base_config is not None else ()
        state = StageState(name, m.StageMeta(config), layers, scope, key.digest, triggers)
        return state, key

    def _stage_platform(self, planned: PlannedStage) -> Platform:
        return stage_platform(planned.platform, self.options.platform)

    def _base_image(
        self, base: ImageBase, platform: Platform, step_id: int
    ) -> tuple[Descriptor, ImageConfig, tuple[Layer, ...]]:
        desc = self.sources.image(base.ref, named_context=base.named_context, platform=platform)
        manifest_desc, manifest, config = images.read_image(self.store, desc, platform)
        check_platform(config, platform, base.ref)
        self.emit(Log(step_id, f"base {base.ref} {manifest_desc.digest}"))
        return manifest_desc, config, base_layers(manifest.layers, config)

    # -- one step ------------------------------------------------------------------------------

    def _step(
        self,
        state: StageState,
        instr: ins.Instruction,
        source: StageBase | ImageBase | None,
        index: int,
        step_id: int,
    ) -> tuple[StageState, StepOutcome]:
        """key -> hit? reuse : execute, by the op of the instruction's kind (engine/ops/):
        the stage's state after the step, and what to report of it."""
        op = self.ops[type(instr)]
        step = Step(state, instr, source, index, step_id, self.at.run_follows, self.at.next_instr)
        prepared = op.prepare(step)
        key, record = prepared.found or self._lookup(state, op.cache_inputs(state, prepared))
        reason = ""
        if record is not None:
            done = op.reuse(step, prepared, record)
        else:
            reason = self.cache.reason(state.name, index, key, prepared.files)
            expect_cached(self.options.expect_cached, state.name, reason)
            done = op.execute(step, prepared, key)
            self.cache.record(key, done.layer, done.state.meta.config, prepared.files)
        files = None  # what the layer holds, for the build's history: only a step that ran
        if record is None and done.layer is not None and done.changes is not None:
            files = summarize(done.changes, parent_lookup(self.files.trees.loaded(state)))
        self.files.trees.advance(state, done.state, done.changes)
        layer = done.layer.digest if done.layer else None
        outcome = StepOutcome(key, record is not None, layer, reason, done.note, files=files)
        return done.state.with_key(key.digest), outcome

    def _lookup(self, state: StageState, inputs: Inputs) -> tuple[CacheKey, CacheRecord | None]:
        key = chain(state.key, inputs)
        return key, self.cache.lookup(state.name, key, state.meta.config)


@dataclass(frozen=True)
class StepOutcome:
    """How a step ended: its key, hit or miss and why, and the layer it left."""

    key: CacheKey | None  # None: a dry run's step that cannot be keyed without running
    hit: bool
    layer: Digest | None = None
    reason: str = ""
    note: str = ""
    unknown: bool = False  # a dry run: only running could tell
    details: tuple[str, ...] = ()  # a dry run's lines under the step
    files: LayerFiles | None = None  # what a step that ran put in its layer
