"""The executor: walks the build graph stage by stage and turns each step into config or layers.

Orchestration only. Parsing, planning, expansion, COPY semantics, tar writing and the store are
other modules; this one calls them in order and reports progress as events. Nothing is tagged
until every step succeeded, so a failed build leaves the previous image of a tag intact; blobs
it wrote are complete (the store commits them atomically) and unreferenced until gc.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from layerbuild.build import meta as m
from layerbuild.build.copyop import CopyRequest, run_copy
from layerbuild.build.events import BuildDone, BuildEvent, Log, StepDone, StepFailed, StepStarted
from layerbuild.build.imageread import load_tree, read_file
from layerbuild.build.sources import SourceResolver
from layerbuild.build.users import resolve_chown, resolve_user
from layerbuild.context.ignore import IgnoreRules
from layerbuild.context.select import load_ignore
from layerbuild.digest import Digest
from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.expand import expand
from layerbuild.dockerfile.parser import Dockerfile, parse_dockerfile
from layerbuild.dockerfile.scope import VarScope, global_arg_values
from layerbuild.dockerfile.source import DockerfileSource
from layerbuild.errors import BuildError, ContextError, LayerbuildError, UnsupportedError
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.compress import pack_layer
from layerbuild.image.config import History, ImageConfig
from layerbuild.image.descriptor import Descriptor, Platform
from layerbuild.image.manifest import Layer
from layerbuild.image.tree import FileTree
from layerbuild.plan.graph import BuildGraph, ImageBase, PlannedStage, ScratchBase, StageBase, plan
from layerbuild.registry.reference import normalize_tag
from layerbuild.store import images
from layerbuild.store.layout import Store

HISTORY_COMMENT = "layerbuild.dockerfile.v0"
_META = (
    ins.Env,
    ins.Label,
    ins.Expose,
    ins.Volume,
    ins.StopSignal,
    ins.User,
    ins.Shell,
    ins.Healthcheck,
    ins.Onbuild,
    ins.Cmd,
    ins.Entrypoint,
    ins.Maintainer,
)


@dataclass(frozen=True)
class BuildOptions:
    context: Path
    dockerfile: Path | None = None  # default: <context>/Dockerfile
    tags: tuple[str, ...] = ()
    target: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    build_contexts: Mapping[str, str] = field(default_factory=dict)  # NAME -> spec
    platform: Platform = field(default_factory=Platform)
    compression: str = "gzip"
    source_date_epoch: int | None = None
    dockerfile_text: str | None = None  # `-f -`: the Dockerfile read from stdin


@dataclass(frozen=True)
class BuildResult:
    descriptor: Descriptor  # the image manifest
    config: ImageConfig
    tags: tuple[str, ...]
    seconds: float

    @property
    def digest(self) -> Digest:
        return self.descriptor.digest


@dataclass
class StageState:
    """A stage while it is built: its config so far, its layers, and its file tree."""

    name: str
    meta: m.StageMeta
    layers: list[Layer]
    scope: VarScope
    tree: FileTree | None = None  # loaded on first need: most metadata steps never look


def build(
    store: Store, options: BuildOptions, emit: Callable[[BuildEvent], None] = lambda e: None
) -> BuildResult:
    """Build the Dockerfile of `options` into `store`, tag it, and return the image."""
    return Executor(store, options, emit).build()


class Executor:
    def __init__(self, store: Store, options: BuildOptions, emit: Callable[[BuildEvent], None]):
        self.store = store
        self.options = options
        self.emit = emit
        self.started = time.monotonic()
        epoch = options.source_date_epoch
        self.now = epoch if epoch is not None else int(time.time())
        self.created = datetime.fromtimestamp(self.now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.step_ids = 0
        self.results: dict[int, StageState] = {}

    # -- the whole build ---------------------------------------------------------------------

    def build(self) -> BuildResult:
        dockerfile = self._parse()
        self.dockerfile = dockerfile
        tags = tuple(normalize_tag(t) for t in self.options.tags)
        graph = plan(
            dockerfile,
            target=self.options.target,
            build_args=self.options.build_args,
            named_contexts=tuple(self.options.build_contexts),
            platform=self.options.platform,
        )
        self.global_args = global_arg_values(
            dockerfile, self.options.build_args, self.options.platform
        )
        self.ignore = self._ignore()
        self.sources = SourceResolver(
            self.store, self.options.context, self.options.build_contexts, self.options.platform
        )
        scratch = tempfile.TemporaryDirectory(prefix="layerbuild-build-")
        self.scratch = Path(scratch.name)
        # shared: other builds run alongside; gc (exclusive) waits until this build has tagged
        with self.store.lock(shared=True):
            return self._build_graph(graph, tags, scratch)

    def _build_graph(
        self, graph: BuildGraph, tags: tuple[str, ...], scratch: tempfile.TemporaryDirectory[str]
    ) -> BuildResult:
        try:
            for planned in graph.stages:
                self.results[planned.index] = self._run_stage(planned, graph)
            final = self.results[graph.target]
            config = replace(final.meta.config, created=self.created)
            desc = images.write_image(self.store, config, final.layers)
            for tag in tags:
                images.tag(self.store, tag, desc)
        finally:
            self.sources.close()
            scratch.cleanup()
        seconds = time.monotonic() - self.started
        self.emit(BuildDone(desc.digest, tags, seconds))
        return BuildResult(desc, config, tags, seconds)

    def _parse(self) -> Dockerfile:
        opts = self.options
        path = opts.dockerfile or opts.context / "Dockerfile"
        if opts.dockerfile_text is not None:
            return parse_dockerfile(DockerfileSource("Dockerfile", opts.dockerfile_text))
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ContextError(
                f"no Dockerfile at {path}",
                hint="pass -f PATH to name the Dockerfile, or run in the context directory",
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise ContextError(f"cannot read the Dockerfile {path}: {e}") from None
        return parse_dockerfile(DockerfileSource(str(path), text))

    def _ignore(self) -> IgnoreRules | None:
        if not self.options.context.is_dir():
            raise ContextError(
                f"the build context {self.options.context} is not a directory",
                hint="pass the directory that holds the files COPY and ADD read",
            )
        dockerfile = self.options.dockerfile if self.options.dockerfile_text is None else None
        return load_ignore(self.options.context, dockerfile)

    # -- one stage -----------------------------------------------------------------------------

    def _run_stage(self, planned: PlannedStage, graph: BuildGraph) -> StageState:
        stage = planned.stage
        total = len(stage.instructions) + 1
        state = self._from(planned, total)
        copy_from = dict(planned.copy_from)
        for position, instr in enumerate(stage.instructions):
            step_id = self._start(state.name, position + 2, total, instr)
            t0 = time.monotonic()
            try:
                layer, note = self._step(state, instr, copy_from.get(position))
            except LayerbuildError as e:
                self.emit(StepFailed(step_id, time.monotonic() - t0, str(e)))
                if isinstance(e, BuildError) and e.step is None:
                    e.step = _step_name(self.dockerfile, state.name, instr)
                raise
            self.emit(StepDone(step_id, time.monotonic() - t0, layer, note=note))
        return state

    def _start(self, stage: str, index: int, total: int, instr: ins.Instruction) -> int:
        self.step_ids += 1
        text = " ".join(instr.original.split())
        self.emit(StepStarted(self.step_ids, stage, index, total, instr.span.start_line, text))
        return self.step_ids

    def _from(self, planned: PlannedStage, total: int) -> StageState:
        stage = planned.stage
        name = stage.name or f"stage-{stage.index}"
        step_id = self._start(name, 1, total, stage.from_)
        t0 = time.monotonic()
        platform = self.options.platform
        base_config: ImageConfig | None
        if isinstance(planned.base, ScratchBase):
            base_config, layers = None, []
        elif isinstance(planned.base, StageBase):
            parent = self.results[planned.base.index]
            base_config, layers = parent.meta.config, list(parent.layers)
        else:
            base_config, layers = self._base_image(planned.base, step_id)
        config = m.new_stage_config(base_config, platform.architecture, platform.os)
        if base_config is not None and base_config.config.on_build:
            raise UnsupportedError(
                "the base image has ONBUILD triggers, which need RUN support to be honoured",
                step=_step_name(self.dockerfile, name, stage.from_),
            )
        scope = VarScope.for_stage(
            self.global_args, self.options.build_args, config.config.env_dict()
        )
        self.emit(StepDone(step_id, time.monotonic() - t0))
        return StageState(name, m.StageMeta(config), layers, scope)

    def _base_image(self, base: ImageBase, step_id: int) -> tuple[ImageConfig, list[Layer]]:
        desc = self.sources.image(base.ref, named_context=base.named_context)
        _, manifest, config = images.read_image(self.store, desc, self.options.platform)
        self.emit(Log(step_id, f"base {base.ref} {desc.digest}"))
        return config, _layers(manifest.layers, config)

    # -- one step ------------------------------------------------------------------------------

    def _step(
        self, state: StageState, instr: ins.Instruction, source: StageBase | ImageBase | None
    ) -> tuple[Digest | None, str]:
        escape = self.dockerfile.escape
        if isinstance(instr, ins.Arg):
            state.scope.apply_arg(instr, escape=escape, source=self.dockerfile.source)
            # BuildKit's dispatchArg records the ARG as written (defaults unexpanded)
            self._history(state, instr, empty=True)
            return None, ""
        if isinstance(instr, ins.Run):
            raise UnsupportedError(
                "RUN is not supported yet: layerbuild cannot execute commands in a sandbox",
                hint="build stages that only use FROM, COPY, ADD and metadata instructions, "
                "or use --target to stop before the first RUN",
            )
        expanded = expand(instr, state.scope.expansion_env(), escape=escape)
        if isinstance(expanded, ins.Env):
            for key, value in expanded.pairs:
                state.scope.set_env(key, value)
        if isinstance(expanded, _META):
            state.meta = m.apply_metadata(state.meta, expanded)
            self._history(state, expanded, empty=True)
            return None, ""
        if isinstance(expanded, ins.Workdir):
            return self._workdir(state, expanded), ""
        if isinstance(expanded, ins.Copy | ins.Add):
            return self._copy(state, expanded, source)
        raise UnsupportedError(f"{instr.keyword} is not supported here")

    def _history(self, state: StageState, instr: ins.Instruction, *, empty: bool) -> None:
        entry = History(
            created_by=ins.describe(instr),
            created=self.created,
            comment=HISTORY_COMMENT,
            empty_layer=empty,
        )
        config = state.meta.config
        state.meta = replace(state.meta, config=replace(config, history=(*config.history, entry)))

    def _tree(self, state: StageState) -> FileTree:
        if state.tree is None:
            state.tree = load_tree(self.store, state.layers)
        return state.tree

    def _add_layer(
        self, state: StageState, instr: ins.Instruction, changes: list[Change]
    ) -> Digest | None:
        if not changes:
            self._history(state, instr, empty=True)
            return None
        with self.store.content.ingest() as ingest:
            layer = pack_layer(
                changes,
                ingest,
                compression=self.options.compression,
                source_date_epoch=self.options.source_date_epoch,
            )
            ingest.commit(expected=layer.digest)
        self._tree(state).apply(changes, layer.digest)
        state.layers.append(layer)
        config = state.meta.config
        state.meta = replace(
            state.meta, config=replace(config, diff_ids=(*config.diff_ids, layer.diff_id))
        )
        self._history(state, instr, empty=False)
        return layer.digest

    def _workdir(self, state: StageState, instr: ins.Workdir) -> Digest | None:
        state.meta = m.apply_metadata(state.meta, instr)
        path = state.meta.workdir.lstrip("/")
        tree = self._tree(state)
        if not path or tree.lookup(path) is not None:
            self._history(state, instr, empty=True)
            return None
        uid, gid = self._user_ids(state)
        changes: list[Change] = []
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            sub = "/".join(parts[:depth])
            existing = tree.lookup(sub)
            if existing is not None and existing.kind is ChangeKind.DIR:
                changes.append(replace(existing, path=tree.resolve(sub)))
                continue
            changes.append(Change(sub, ChangeKind.DIR, 0o755, uid, gid, mtime=self.now))
        return self._add_layer(state, instr, changes)

    def _user_ids(self, state: StageState) -> tuple[int, int]:
        user = state.meta.config.config.user
        if not user:
            return 0, 0
        return resolve_user(user, *self._passwd_group(state))

    def _passwd_group(self, state: StageState) -> tuple[str | None, str | None]:
        tree = self._tree(state)
        texts = []
        for path in ("etc/passwd", "etc/group"):
            data = read_file(self.store, state.layers, tree, path)
            texts.append(data.decode("utf-8", "replace") if data is not None else None)
        return texts[0], texts[1]

    def _copy(
        self,
        state: StageState,
        instr: ins.Copy | ins.Add,
        source: StageBase | ImageBase | None,
    ) -> tuple[Digest | None, str]:
        if source is None:
            root, preserve_owner, ignore = self.options.context, False, self.ignore
        elif isinstance(source, StageBase):
            root = self.sources.stage_rootfs(self.results[source.index].layers)
            preserve_owner, ignore = True, None
        else:
            root = self.sources.rootfs_of(source.ref, named_context=source.named_context)
            preserve_owner, ignore = True, None
        chown = None
        if instr.chown:
            needs_names = not all(p.isdigit() for p in instr.chown.split(":"))
            texts = self._passwd_group(state) if needs_names else (None, None)
            chown = resolve_chown(instr.chown, *texts)
        request = CopyRequest(
            instr=instr,
            root=root,
            workdir=state.meta.workdir,
            ignore=ignore,
            chown=chown,
            preserve_owner=preserve_owner,
            now=self.now,
            env=state.scope.expansion_env(),
            scratch=self.scratch,
        )
        changes = run_copy(request, self._tree(state))
        note = f"{sum(1 for c in changes if c.kind is ChangeKind.FILE)} files"
        return self._add_layer(state, instr, changes), note


def _layers(descriptors: tuple[Descriptor, ...], config: ImageConfig) -> list[Layer]:
    if len(descriptors) != len(config.diff_ids):
        raise BuildError(
            f"base image is inconsistent: {len(descriptors)} layers but "
            f"{len(config.diff_ids)} diff_ids in its config",
            hint="re-create or re-load the base image",
        )
    return [
        Layer(diff_id, d.digest, d.size, d.media_type)
        for d, diff_id in zip(descriptors, config.diff_ids, strict=True)
    ]


def _step_name(dockerfile: Dockerfile, stage: str, instr: ins.Instruction) -> str:
    line = instr.span.start_line
    text = " ".join(instr.original.split())
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{dockerfile.source.name}:{line} (stage {stage}) {text}"
