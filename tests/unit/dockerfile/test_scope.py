"""Tests of dockerfile/scope.py: Docker's ARG/ENV visibility rules."""

from __future__ import annotations

import pytest

from layerbuild.dockerfile.expand import expand
from layerbuild.dockerfile.instructions import Arg, Env, From
from layerbuild.dockerfile.parser import Dockerfile, parse_dockerfile
from layerbuild.dockerfile.scope import (
    VarScope,
    global_arg_values,
    platform_arg_values,
    unused_build_args,
)
from layerbuild.dockerfile.source import DockerfileSource
from layerbuild.errors import DockerfileError
from layerbuild.image.descriptor import Platform

ARM = Platform(architecture="arm", os="linux", variant="v7")
AMD = Platform(architecture="amd64", os="linux")


def _df(text: str) -> Dockerfile:
    return parse_dockerfile(DockerfileSource("Dockerfile", text))


def _walk(df: Dockerfile, build_args: dict[str, str], image_env: dict[str, str]) -> VarScope:
    """Walk stage 0 the way the executor does: expand, then update the scope."""
    scope = VarScope.for_stage(global_arg_values(df, build_args, AMD), build_args, image_env)
    for instr in df.stages[0].instructions:
        if isinstance(instr, Arg):
            scope.apply_arg(instr, source=df.source)
        elif isinstance(instr, Env):
            expanded = expand(instr, scope.expansion_env())
            assert isinstance(expanded, Env)
            for key, value in expanded.pairs:
                scope.set_env(key, value)
    return scope


def test_global_arg_is_only_for_from_until_redeclared() -> None:
    df = _df("ARG VERSION=3.19\nFROM alpine:$VERSION\nENV SEEN=${VERSION:-none}\n")
    values = global_arg_values(df, {})
    assert values["VERSION"] == "3.19"
    from_ = expand(df.stages[0].from_, {k: v for k, v in values.items() if v is not None})
    assert isinstance(from_, From) and from_.image == "alpine:3.19"
    assert _walk(df, {}, {}).expansion_env()["SEEN"] == "none"


def test_redeclared_global_takes_global_value_or_override() -> None:
    df = _df("ARG VERSION=1\nFROM scratch\nARG VERSION\nENV SEEN=$VERSION\n")
    assert _walk(df, {}, {}).expansion_env()["SEEN"] == "1"
    scope = _walk(df, {"VERSION": "2"}, {})
    assert scope.expansion_env()["SEEN"] == "2"
    assert scope.used_build_args() == {"VERSION"}


def test_override_then_default_then_unset() -> None:
    df = _df("FROM scratch\nARG A=default B=b C\n")
    scope = _walk(df, {"A": "override"}, {})
    env = scope.expansion_env()
    assert env["A"] == "override" and env["B"] == "b"
    assert "C" not in env and "C" not in scope.run_env()


def test_defaults_see_earlier_pairs_and_overridden_defaults_are_not_expanded() -> None:
    df = _df("FROM scratch\nARG A=1 B=$A-2\nARG BROKEN=${NEEDED:?required}\n")
    env = _walk(df, {"BROKEN": "given"}, {}).expansion_env()
    assert (env["A"], env["B"], env["BROKEN"]) == ("1", "1-2", "given")
    with pytest.raises(DockerfileError) as info:
        _walk(df, {}, {})
    assert info.value.line == 3 and "NEEDED: required" in info.value.message


def test_env_wins_over_arg_in_either_order() -> None:
    df = _df("FROM scratch\nARG BEFORE=arg\nENV BEFORE=env AFTER=env\nARG AFTER=arg\n")
    scope = _walk(df, {"AFTER": "override"}, {})
    assert scope.expansion_env()["BEFORE"] == "env"
    assert scope.expansion_env()["AFTER"] == "env"
    assert scope.run_env()["AFTER"] == "env"


def test_image_env_is_visible_and_env_instructions_replace_it() -> None:
    df = _df("FROM scratch\nARG PATH=/arg\nENV LANG=C.UTF-8 USE=$PATH:/x\n")
    scope = _walk(df, {}, {"PATH": "/usr/bin", "LANG": "C"})
    env = scope.expansion_env()
    assert env["PATH"] == "/usr/bin"  # image ENV is ENV: it wins over the ARG
    assert env["USE"] == "/usr/bin:/x"
    assert env["LANG"] == "C.UTF-8"


def test_proxy_args_reach_run_only() -> None:
    df = _df("FROM scratch\nARG no_proxy\n")
    build_args = {"HTTP_PROXY": "http://user:secret@proxy:3128", "no_proxy": "localhost"}
    scope = _walk(df, build_args, {})
    assert scope.run_env()["HTTP_PROXY"] == "http://user:secret@proxy:3128"
    assert "HTTP_PROXY" not in scope.expansion_env()
    assert scope.expansion_env()["no_proxy"] == "localhost"  # declared: a normal ARG
    assert scope.history_args() == [("no_proxy", "localhost")]
    assert unused_build_args(df, build_args) == []


def test_platform_args_in_global_scope_and_in_stage_when_declared() -> None:
    df = _df("FROM --platform=$BUILDPLATFORM alpine\nARG TARGETARCH TARGETVARIANT\n")
    values = global_arg_values(df, {}, ARM, build_platform=AMD)
    assert values["TARGETPLATFORM"] == "linux/arm/v7"
    assert values["BUILDPLATFORM"] == "linux/amd64"
    assert values["BUILDVARIANT"] == ""
    scope = VarScope.for_stage(values, {}, {})
    assert "TARGETARCH" not in scope.expansion_env()
    arg = df.stages[0].instructions[0]
    assert isinstance(arg, Arg)
    scope.apply_arg(arg)
    env = scope.expansion_env()
    assert (env["TARGETARCH"], env["TARGETVARIANT"]) == ("arm", "v7")
    assert "TARGETOS" not in env


def test_platform_args_default_build_platform_to_target() -> None:
    values = platform_arg_values(AMD)
    assert values["BUILDARCH"] == "amd64" and values["TARGETOS"] == "linux"
    assert platform_arg_values(None) == {}


def test_global_defaults_chain_and_override() -> None:
    df = _df("ARG REG=docker.io\nARG IMG=$REG/library/alpine TAG\nFROM $IMG:${TAG:-latest}\n")
    assert global_arg_values(df, {})["IMG"] == "docker.io/library/alpine"
    assert global_arg_values(df, {})["TAG"] is None
    values = global_arg_values(df, {"REG": "quay.io", "TAG": "3"})
    assert (values["IMG"], values["TAG"]) == ("quay.io/library/alpine", "3")


def test_global_default_error_points_at_line() -> None:
    df = _df("ARG OK=1\nARG BAD=${OK:+${\nFROM scratch\n")
    with pytest.raises(DockerfileError) as info:
        global_arg_values(df, {})
    assert info.value.line == 2 and info.value.source_line == "ARG BAD=${OK:+${"


def test_global_declaration_of_platform_arg_keeps_its_value() -> None:
    df = _df("ARG TARGETOS\nFROM scratch\n")
    assert global_arg_values(df, {}, AMD)["TARGETOS"] == "linux"


def test_unused_build_args() -> None:
    df = _df("ARG G\nFROM scratch AS a\nARG A\nFROM scratch AS b\nARG B\n")
    build_args = {"X": "1", "G": "1", "A": "1", "B": "1", "ftp_proxy": "p"}
    build_args["SOURCE_DATE_EPOCH"] = "0"
    assert unused_build_args(df, build_args) == ["X"]
    assert unused_build_args(df, build_args, stages=[df.stages[0]]) == ["X", "B"]


def test_history_args_show_values_as_run_sees_them() -> None:
    df = _df("FROM scratch\nARG A=1 B\nENV A=env\nARG C=3\n")
    assert _walk(df, {}, {}).history_args() == [("A", "env"), ("C", "3")]
