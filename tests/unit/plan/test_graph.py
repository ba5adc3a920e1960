"""Tests of plan/graph.py: stage references, pruning to the target, order and errors."""

from __future__ import annotations

import pytest

from layerbuild.dockerfile.parser import Dockerfile, parse_dockerfile
from layerbuild.dockerfile.source import DockerfileSource
from layerbuild.errors import DockerfileError
from layerbuild.image.descriptor import Platform
from layerbuild.plan.graph import (
    BuildGraph,
    ImageBase,
    ScratchBase,
    StageBase,
    plan,
)


def _df(text: str) -> Dockerfile:
    return parse_dockerfile(DockerfileSource("Dockerfile", text))


def _plan(text: str, target: str | None = None, **kwargs: object) -> BuildGraph:
    build_args = kwargs.pop("build_args", {})
    assert isinstance(build_args, dict)
    return plan(_df(text), target=target, build_args=build_args, **kwargs)  # type: ignore[arg-type]


def _indices(graph: BuildGraph) -> list[int]:
    return [s.index for s in graph.stages]


def test_single_stage() -> None:
    graph = _plan("FROM alpine:3.19\nRUN true\n")
    assert _indices(graph) == [0] and graph.target == 0
    assert graph.stages[0].base == ImageBase("alpine:3.19")
    assert graph.stages[0].deps == frozenset()


def test_from_uses_global_args_overrides_and_platform_args() -> None:
    text = "ARG TAG=3.18\nFROM --platform=$BUILDPLATFORM alpine:$TAG\n"
    graph = _plan(text, build_args={"TAG": "3.19"}, platform=Platform("arm64", "linux"))
    assert graph.stages[0].base == ImageBase("alpine:3.19")
    assert graph.stages[0].platform == "linux/arm64"
    assert _plan("FROM alpine\n").stages[0].platform is None


def test_from_stage_is_case_insensitive_and_scratch_is_empty() -> None:
    graph = _plan("FROM scratch AS Base\nFROM BASE\n")
    assert graph.stages[0].base == ScratchBase()
    assert graph.stages[1].base == StageBase(0)
    assert graph.stages[1].deps == frozenset({0})


def test_from_own_name_is_an_image() -> None:
    graph = _plan("FROM node AS node\n")
    assert graph.stages[0].base == ImageBase("node")


def test_copy_from_name_index_and_image() -> None:
    text = (
        "FROM alpine AS build\n"
        "FROM alpine AS other\n"
        "FROM busybox\n"
        "RUN true\n"
        "COPY --from=build /a /a\n"
        "COPY --from=1 /b /b\n"
        "COPY --from=nginx:1.25 /etc/nginx /etc/nginx\n"
        "COPY plain /plain\n"
    )
    final = _plan(text).stages[-1]
    assert final.copy_from == (
        (1, StageBase(0)),
        (2, StageBase(1)),
        (3, ImageBase("nginx:1.25")),
    )
    assert final.deps == frozenset({0, 1})


def test_copy_from_expands_global_stage_and_build_args() -> None:
    text = (
        "ARG SRC=one\n"
        "FROM alpine AS one\n"
        "FROM alpine AS two\n"
        "FROM alpine AS three\n"
        "FROM alpine\n"
        "ARG SRC\n"
        "ARG LOCAL=two\n"
        "COPY --from=$SRC /x /x\n"
        "COPY --from=${LOCAL} /y /y\n"
        "ARG PICK\n"
        "COPY --from=${PICK:-one} /z /z\n"
    )
    final = _plan(text).stages[-1]
    assert [s for _, s in final.copy_from] == [StageBase(0), StageBase(1), StageBase(0)]
    final = _plan(text, build_args={"SRC": "three", "PICK": "two"}).stages[-1]
    assert [s for _, s in final.copy_from] == [StageBase(2), StageBase(1), StageBase(1)]


def test_copy_from_sees_args_inherited_from_the_base_stages() -> None:
    """A stage built FROM another sees that stage's ARGs (and its ancestors') in --from, as
    the executor's scope does; its own ARG overrides."""
    text = (
        "FROM alpine AS one\n"
        "FROM alpine AS two\n"
        "FROM alpine AS base\n"
        "ARG SRC=one\n"
        "FROM base AS mid\n"
        "FROM mid\n"
        "COPY --from=$SRC /x /x\n"
        "ARG SRC=two\n"
        "COPY --from=$SRC /y /y\n"
    )
    final = _plan(text).stages[-1]
    assert [s for _, s in final.copy_from] == [StageBase(0), StageBase(1)]
    final = _plan(text, build_args={"SRC": "two"}).stages[-1]
    assert [s for _, s in final.copy_from] == [StageBase(1), StageBase(1)]


def test_unneeded_stages_are_pruned_even_when_broken() -> None:
    text = (
        "FROM alpine AS base\n"
        "FROM base AS app\n"
        "FROM ${UNDEFINED:?broken-stage} AS broken\n"
        "COPY --from=nowhere-later /x /x\n"
        "FROM alpine AS unrelated\n"
    )
    graph = _plan(text, target="app")
    assert _indices(graph) == [0, 1] and graph.target == 1
    with pytest.raises(DockerfileError, match="broken-stage"):
        _plan(text, target="broken")


def test_target_by_name_is_case_insensitive() -> None:
    assert _plan("FROM a AS one\nFROM b AS two\n", target="ONE").target == 0


def test_unknown_target_lists_stage_names() -> None:
    with pytest.raises(DockerfileError) as info:
        _plan("FROM a AS build\nFROM b AS release\n", target="relase")
    assert "relase" in info.value.message
    assert info.value.hint is not None and "build, release" in info.value.hint


def test_unknown_target_without_named_stages() -> None:
    with pytest.raises(DockerfileError) as info:
        _plan("FROM a\n", target="x")
    assert info.value.hint is not None and "AS <name>" in info.value.hint


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("FROM a AS one\nCOPY --from=one /x /x\n", 2, "cycle"),
        ("FROM a\nCOPY --from=0 /x /x\n", 2, "cycle"),
        ("FROM a AS t\nCOPY --from=later /x /x\nFROM b AS later\n", 2, "defined later (line 3)"),
        ("FROM a AS t\nCOPY --from=1 /x /x\nFROM b\n", 2, "defined later"),
        ("FROM a\nCOPY --from=5 /x /x\n", 2, "no stage 5"),
        ("FROM later AS t\nFROM b AS later\n", 1, "defined later"),
        ("FROM a\nRUN --mount=type=bind,from=0,target=/m true\n", 2, "cycle"),
        ("ARG IMG\nFROM $IMG\n", 2, "empty after expansion"),
        ("FROM a\nCOPY --from=$NOTHING /x /x\n", 2, "empty after expansion"),
        ("FROM a\nCOPY --from=${X /x /x\n", 2, "missing '}'"),
    ],
)
def test_reference_errors_point_at_the_line(text: str, line: int, needle: str) -> None:
    # the stage in error is the one named t, or the last one
    target = "t" if "AS t\n" in text else None
    with pytest.raises(DockerfileError) as info:
        _plan(text, target)
    assert info.value.line == line
    assert needle in info.value.message


def test_run_mount_from_is_a_dependency() -> None:
    text = (
        "FROM alpine AS tools\n"
        "FROM alpine\n"
        'RUN --mount=type=cache,target=/c --mount="type=bind,from=TOOLS,target=/t" true\n'
    )
    final = _plan(text).stages[-1]
    assert final.deps == frozenset({0})
    assert final.mount_from == ((0, 1, StageBase(0)),)


def test_named_context_replaces_image_in_from_and_copy() -> None:
    text = "FROM docker.io/library/alpine:latest\nCOPY --from=assets /a /a\n"
    graph = _plan(text, named_contexts=("alpine", "assets"))
    stage = graph.stages[0]
    assert stage.base == ImageBase("alpine", named_context=True)
    assert stage.copy_from == ((0, ImageBase("assets", named_context=True)),)
    assert _plan(text).stages[0].base == ImageBase("docker.io/library/alpine:latest")


def test_named_context_replaces_a_stage_of_that_name() -> None:
    text = "FROM alpine AS deps\nRUN make\nFROM deps\nCOPY --from=deps /x /x\n"
    graph = _plan(text, named_contexts=("deps",))
    assert _indices(graph) == [1]
    assert graph.stages[0].base == ImageBase("deps", named_context=True)
    assert graph.stages[0].deps == frozenset()


def test_a_replaced_target_is_its_context_alone() -> None:
    """The stage's FROM and instructions are not read: a COPY --from of itself is no cycle."""
    text = "FROM busybox AS parent\nFROM parent AS some-stage\nCOPY --from=some-stage /a /b\n"
    graph = _plan(text, named_contexts=("some-stage",))
    assert _indices(graph) == [1]
    stage = graph.stages[0]
    assert stage.replaced and stage.base == ImageBase("some-stage", named_context=True)
    assert (stage.deps, stage.copy_from, stage.mount_from) == (frozenset(), (), ())
    with pytest.raises(DockerfileError, match="refers to the stage it is in"):
        _plan(text)  # without the context it is the cycle it says


def test_a_replaced_stage_may_be_named_by_index_or_before_it() -> None:
    text = (
        "FROM busybox AS first\n"
        "COPY --from=later /x /x\n"
        "FROM alpine AS later\n"
        "RUN make\n"
        "FROM first\n"
        "COPY --from=1 /y /y\n"
        "RUN --mount=from=later,target=/t true\n"
    )
    graph = _plan(text, named_contexts=("later",))
    assert _indices(graph) == [0, 2]
    context = ImageBase("later", named_context=True)
    assert graph.stages[0].copy_from == ((0, context),)
    assert graph.stage(2).copy_from == ((0, context),)
    assert graph.stage(2).mount_from == ((1, 0, context),)
    assert not any(s.replaced for s in graph.stages)


def test_a_diamond_keeps_only_the_stages_the_target_needs() -> None:
    text = (
        "FROM alpine AS base\n"
        "FROM base AS left\n"
        "FROM alpine AS unused\n"
        "FROM base AS right\n"
        "FROM scratch\n"
        "COPY --from=left /l /l\n"
        "COPY --from=right /r /r\n"
    )
    graph = _plan(text)
    assert _indices(graph) == [0, 1, 3, 4]
    assert graph.stage(4).deps == frozenset({1, 3})
    with pytest.raises(KeyError):
        graph.stage(2)
