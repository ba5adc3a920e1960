"""The stage graph: which stages a build needs, what each is based on, and in what order.

`plan` starts at the target stage and follows its references: `FROM <stage>`, `COPY --from=` and
`RUN --mount=...,from=`. Stages nothing needs are left out, so a broken stage that the target does
not use is never even expanded (BuildKit behaves the same way). References resolve as in BuildKit:

- FROM values are expanded with the global ARGs (plus the automatic platform args); `--from` and
  mount `from=` values with the stage's ARGs as declared up to that instruction (those it
  inherits from the stage it is built FROM included);
- a `--from` of digits is a stage index; otherwise a stage name (case-insensitive); otherwise a
  named build context; otherwise an image reference. FROM works the same, without indices, and
  `scratch` is the empty base;
- a named build context (`--build-context NAME=...`) replaces an image of that name (matching
  `alpine`, `alpine:latest` and `docker.io/library/alpine` alike) and also a *stage* of that name,
  as BuildKit does; it is represented as `ImageBase(ref=NAME, named_context=True)`. A replaced
  stage is the context and nothing else (dockerfile2llb's buildDispatchStates sets the stage's
  state to the context and skips it): its FROM base and its instructions are never read, so a
  reference in it to itself or to a later stage is no error, and as the target it is planned
  with `replaced=True`, which the executor builds as its FROM alone.

Deliberately stricter than BuildKit: a stage may only use stages defined *before* it. BuildKit
quietly pulls an image called `later` for a `FROM later` written before `FROM ... AS later`, and
accepts a `--from` that names a later stage; both are almost always mistakes and are reported
with the line. Because references only go backwards, the graph has no cycles, and ascending
stage index is a topological order that keeps Dockerfile order.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from layerbuild.dockerfile.expand import expand, expansion_error
from layerbuild.dockerfile.instructions import Arg, Copy, From, Instruction, Run
from layerbuild.dockerfile.parser import Dockerfile, Stage
from layerbuild.dockerfile.scope import VarScope, global_arg_values
from layerbuild.dockerfile.shell import expand_word
from layerbuild.errors import DockerfileError, ShellExpansionError
from layerbuild.image.descriptor import Platform


@dataclass(frozen=True)
class StageBase:
    """Another stage of the same Dockerfile, by index."""

    index: int


@dataclass(frozen=True)
class ImageBase:
    """An image reference (expanded), or with `named_context` the name of a --build-context."""

    ref: str
    named_context: bool = False


@dataclass(frozen=True)
class ScratchBase:
    """`FROM scratch`: an empty root filesystem."""


Base = StageBase | ImageBase | ScratchBase
Source = StageBase | ImageBase


@dataclass(frozen=True)
class PlannedStage:
    """A stage the target needs, with its base and the stages it reads."""

    stage: Stage
    base: Base
    platform: str | None  # FROM --platform, expanded; None when not given
    deps: frozenset[int]  # indices of the stages this one needs
    copy_from: tuple[tuple[int, Source], ...]  # instruction index -> COPY --from source
    # (instruction index, mount index in Run.mounts, source) for RUN --mount=...,from=...
    mount_from: tuple[tuple[int, int, Source], ...] = ()
    replaced: bool = False  # a named context of the stage's name stands for it: nothing is run

    @property
    def index(self) -> int:
        return self.stage.index


@dataclass(frozen=True)
class BuildGraph:
    """The stages a build runs, dependencies first, and which is the target."""

    stages: tuple[PlannedStage, ...]  # only those the target needs, dependencies first
    target: int  # index of the target stage

    def stage(self, index: int) -> PlannedStage:
        """The planned stage with Dockerfile index `index` (KeyError if not needed)."""
        for planned in self.stages:
            if planned.index == index:
                return planned
        raise KeyError(index)


def plan(
    dockerfile: Dockerfile,
    *,
    target: str | None,
    build_args: Mapping[str, str],
    named_contexts: Collection[str] = (),
    platform: Platform | None = None,
    build_platform: Platform | None = None,
) -> BuildGraph:
    """The stages needed to build `target` (default: the last stage), dependencies first.

    DockerfileError for an unknown target, a reference to the stage itself or a later one, a
    stage index out of range, or a value that cannot be expanded.
    """
    target_index = _target_index(dockerfile, target)
    global_values = global_arg_values(
        dockerfile, build_args, platform, build_platform=build_platform
    )
    planner = _Planner(dockerfile, global_values, build_args, tuple(named_contexts))
    planned: dict[int, PlannedStage] = {}
    todo = [target_index]
    while todo:
        index = todo.pop()
        if index not in planned:
            planned[index] = planner.plan_stage(dockerfile.stages[index])
            todo.extend(planned[index].deps)
    return BuildGraph(tuple(planned[i] for i in sorted(planned)), target_index)


def _target_index(dockerfile: Dockerfile, target: str | None) -> int:
    if target is None:
        return len(dockerfile.stages) - 1
    wanted = target.lower()
    for stage in dockerfile.stages:
        if stage.name == wanted:
            return stage.index
    names = [s.name for s in dockerfile.stages if s.name]
    hint = (
        f"stages in this Dockerfile: {', '.join(names)}"
        if names
        else "no stage has a name; name one with FROM <image> AS <name>"
    )
    raise DockerfileError(
        f"target stage {target!r} not found", file=dockerfile.source.name, hint=hint
    )


class _Planner:
    """Resolves one stage's references; holds what every stage shares."""

    def __init__(
        self,
        dockerfile: Dockerfile,
        global_values: Mapping[str, str | None],
        build_args: Mapping[str, str],
        named_contexts: tuple[str, ...],
    ) -> None:
        self.df = dockerfile
        self.global_values = global_values
        self.from_env = {k: v for k, v in global_values.items() if v is not None}
        self.build_args = build_args
        self.named = named_contexts
        self.stage_args: dict[int, dict[str, str | None]] = {}  # what each stage passes on

    def plan_stage(self, stage: Stage) -> PlannedStage:
        from_ = self._from(stage)
        context = self._replacing(stage)
        if context is not None:
            replacement = ImageBase(context, named_context=True)
            return PlannedStage(stage, replacement, from_.platform, frozenset(), (), replaced=True)
        base = self._base(from_.image, stage)
        copies, mounts = self._sources(stage, self._inherited(base))
        deps = {s.index for _, s in copies if isinstance(s, StageBase)}
        deps |= {s.index for _, _, s in mounts if isinstance(s, StageBase)}
        if isinstance(base, StageBase):
            deps.add(base.index)
        return PlannedStage(stage, base, from_.platform, frozenset(deps), copies, mounts)

    def _from(self, stage: Stage) -> From:
        from_ = expand(stage.from_, self.from_env, escape=self.df.escape, source=self.df.source)
        assert isinstance(from_, From)
        if not from_.image:
            raise self._error(
                f"the base image name ({stage.from_.image}) is empty after expansion",
                stage.from_,
                "declare the ARG before the first FROM with a default, or pass --build-arg",
            )
        return from_

    def _inherited(self, base: Base) -> dict[str, str | None] | None:
        """The ARGs a stage built on `base` inherits: those of a base stage (and its own
        ancestors), as the executor's scopes pass them on; None for an image or scratch."""
        if not isinstance(base, StageBase):
            return None
        if base.index not in self.stage_args:
            parent = self.df.stages[base.index]
            scope = VarScope.for_stage(
                self.global_values,
                self.build_args,
                {},
                self._inherited(self._base(self._from(parent).image, parent)),
            )
            for instr in parent.instructions:
                if isinstance(instr, Arg):
                    scope.apply_arg(instr, escape=self.df.escape, source=self.df.source)
            self.stage_args[base.index] = scope.args()
        return self.stage_args[base.index]

    def _sources(
        self, stage: Stage, inherited: dict[str, str | None] | None
    ) -> tuple[tuple[tuple[int, Source], ...], tuple[tuple[int, int, Source], ...]]:
        # --from may use the stage's ARGs, so declare them as the executor will (image ENV is
        # not known yet and does not take part)
        scope = VarScope.for_stage(self.global_values, self.build_args, {}, inherited)
        copies: list[tuple[int, Source]] = []
        mounts: list[tuple[int, int, Source]] = []
        for position, instr in enumerate(stage.instructions):
            if isinstance(instr, Arg):
                scope.apply_arg(instr, escape=self.df.escape, source=self.df.source)
            elif isinstance(instr, Copy) and instr.from_stage is not None:
                name = self._expand(instr.from_stage, scope, instr)
                copies.append((position, self._source(name, stage, instr, "--from")))
            elif isinstance(instr, Run):
                for number, mount in enumerate(instr.mounts):
                    raw = _mount_from(mount)
                    if raw is not None:
                        name = self._expand(raw, scope, instr)
                        source = self._source(name, stage, instr, "--mount from")
                        mounts.append((position, number, source))
        return tuple(copies), tuple(mounts)

    def _expand(self, word: str, scope: VarScope, instr: Instruction) -> str:
        try:
            value = expand_word(word, scope.expansion_env(), escape=self.df.escape)
        except ShellExpansionError as exc:
            raise expansion_error(instr, exc, self.df.source) from None
        if not value:
            raise self._error(
                f"the stage or image name ({word}) is empty after expansion",
                instr,
                "declare the ARG it uses with a default, or pass --build-arg",
            )
        return value

    def _base(self, image: str, stage: Stage) -> Base:
        named_stage = self.df.stage(image) if not image.isdigit() else None
        replacing = self._replacing(named_stage) if named_stage is not None else None
        if replacing is not None:
            return ImageBase(replacing, named_context=True)
        if named_stage is not None and named_stage.index < stage.index:
            return StageBase(named_stage.index)
        if named_stage is not None and named_stage.index > stage.index:
            raise self._later(image, named_stage, stage.from_)
        context = self._named_context(image)
        if context is not None:
            return ImageBase(context, named_context=True)
        if image.lower() == "scratch":
            return ScratchBase()
        return ImageBase(image)

    def _source(self, name: str, stage: Stage, instr: Instruction, what: str) -> Source:
        if name.isdigit():
            index = int(name)
            if index >= len(self.df.stages):
                raise self._error(
                    f"{what}={name}: there is no stage {index} (stages are 0.."
                    f"{len(self.df.stages) - 1})",
                    instr,
                    "use the index or name of an earlier stage",
                )
            return self._earlier(self.df.stages[index], name, stage, instr, what)
        named_stage = self.df.stage(name)
        if named_stage is not None:
            return self._earlier(named_stage, name, stage, instr, what)
        context = self._named_context(name)
        if context is not None:
            return ImageBase(context, named_context=True)
        return ImageBase(name)

    def _earlier(
        self, used: Stage, name: str, stage: Stage, instr: Instruction, what: str
    ) -> Source:
        context = self._replacing(used)
        if context is not None:  # the context, not the stage: no order, no cycle
            return ImageBase(context, named_context=True)
        if used.index == stage.index:
            raise self._error(
                f"{what}={name} refers to the stage it is in (a cycle)",
                instr,
                "copy from an earlier stage, or split this stage in two",
            )
        if used.index > stage.index:
            raise self._later(name, used, instr)
        return StageBase(used.index)

    def _replacing(self, stage: Stage) -> str | None:
        """The named context that replaces `stage` (one of its name), if any."""
        return self._named_context(stage.name) if stage.name is not None else None

    def _named_context(self, ref: str) -> str | None:
        wanted = {ref, ref.lower(), _familiar(ref)}
        return next((name for name in self.named if name in wanted), None)

    def _later(self, name: str, used: Stage, instr: Instruction) -> DockerfileError:
        return self._error(
            f"{name!r} is a stage defined later (line {used.from_.span.start_line}); a stage can "
            "only use stages defined before it",
            instr,
            "move that stage above this one",
        )

    def _error(self, message: str, instr: Instruction, hint: str) -> DockerfileError:
        return self.df.source.error(f"{instr.keyword}: {message}", instr.span, hint=hint)


def _mount_from(mount: str) -> str | None:
    """The `from=` value of a RUN --mount spec (CSV, as BuildKit reads it), if any."""
    import csv  # here: most Dockerfiles have no RUN --mount, and start-up pays every import

    for field in next(csv.reader([mount]), []):
        key, has_eq, value = field.partition("=")
        if has_eq and key.strip().lower() == "from":
            return value
    return None


def _familiar(ref: str) -> str:
    """Docker Hub's short form: docker.io/library/alpine:latest -> alpine."""
    for prefix in (
        "docker.io/library/",
        "index.docker.io/library/",
        "docker.io/",
        "index.docker.io/",
    ):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
            break
    if ref.endswith(":latest") and "@" not in ref:
        ref = ref[: -len(":latest")]
    return ref
