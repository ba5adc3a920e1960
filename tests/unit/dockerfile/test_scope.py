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
    proxy_env,
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


def _walk_stages(
    df: Dockerfile, build_args: dict[str, str], image_env: dict[str, str] | None = None
) -> list[VarScope]:
    """Every stage walked in order; one built FROM an earlier stage inherits its ARGs and its
    ENV (as its config), as in the executor."""
    values = global_arg_values(df, build_args, AMD)
    scopes: list[VarScope] = []
    envs: list[dict[str, str]] = []
    for stage in df.stages:
        parent = df.stage(stage.from_.image)
        inherited = scopes[parent.index].args() if parent is not None else None
        env = dict(envs[parent.index]) if parent is not None else dict(image_env or {})
        scope = VarScope.for_stage(values, build_args, env, inherited)
        for instr in stage.instructions:
            if isinstance(instr, Arg):
                scope.apply_arg(instr, source=df.source)
            elif isinstance(instr, Env):
                expanded = expand(instr, scope.expansion_env())
                assert isinstance(expanded, Env)
                for key, value in expanded.pairs:
                    scope.set_env(key, value)
                    env[key] = value
        scopes.append(scope)
        envs.append(env)
    return scopes


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
    assert unused_build_args(df, build_args) == []


def test_undeclared_proxy_args_stay_out_of_the_key_and_declared_ones_are_in_it() -> None:
    build_args = {"HTTPS_PROXY": "http://p:3128", "no_proxy": "localhost"}
    undeclared = _walk(_df("FROM scratch\nARG V=1\n"), build_args, {})
    assert undeclared.keyed_env() == {"V": "1"}
    assert undeclared.run_env()["https_proxy"] == "http://p:3128"
    declared = _walk(_df("FROM scratch\nARG HTTPS_PROXY\n"), build_args, {})
    assert declared.keyed_env() == {"HTTPS_PROXY": "http://p:3128"}
    # one set by the image's ENV is an ordinary variable too
    from_env = _walk(_df("FROM scratch\n"), build_args, {"no_proxy": "example.com"})
    assert from_env.keyed_env() == {"no_proxy": "example.com"}
    assert from_env.run_env()["no_proxy"] == "example.com"  # ENV wins over the build arg
    assert from_env.run_env()["NO_PROXY"] == "localhost"


def test_proxy_env_gives_both_spellings_and_the_lower_case_one_wins() -> None:
    assert proxy_env({"HTTP_PROXY": "a", "V": "x"}) == {"HTTP_PROXY": "a", "http_proxy": "a"}
    both = proxy_env({"ftp_proxy": "low", "FTP_PROXY": "up", "All_Proxy": "any"})
    assert both == {"FTP_PROXY": "low", "ftp_proxy": "low", "ALL_PROXY": "any", "all_proxy": "any"}
    assert unused_build_args(_df("FROM scratch\n"), {"All_Proxy": "p", "X": "1"}) == ["X"]


def test_args_are_inherited_through_two_and_three_levels() -> None:
    df = _df(
        "FROM scratch AS base\nARG A=1 B\nARG C=$A-c\n"
        "FROM base AS mid\nARG M=m\n"
        "FROM mid\n"
        "FROM scratch AS other\n"
    )
    base, mid, leaf, other = _walk_stages(df, {})
    assert mid.expansion_env() == {"A": "1", "C": "1-c", "M": "m"}
    assert leaf.expansion_env() == {"A": "1", "C": "1-c", "M": "m"}
    assert leaf.run_env() == leaf.keyed_env() == leaf.expansion_env()
    assert other.expansion_env() == {}  # only stages built FROM the stage inherit


def test_build_arg_reaches_an_inherited_arg_through_the_parent() -> None:
    df = _df("FROM scratch AS base\nARG A=1\nFROM base AS mid\nFROM mid\n")
    scopes = _walk_stages(df, {"A": "given"})
    assert [s.expansion_env().get("A") for s in scopes] == ["given"] * 3
    assert unused_build_args(df, {"A": "given"}) == []


def test_child_arg_with_default_or_override_replaces_an_inherited_one() -> None:
    df = _df("FROM scratch AS base\nARG A=1 B=1\nFROM base\nARG A=2\nARG B\n")
    child = _walk_stages(df, {})[1]
    assert child.expansion_env() == {"A": "2", "B": "1"}  # a bare ARG keeps the inherited value
    df = _df("FROM scratch AS base\nARG A=1\nFROM base\nARG A\n")
    assert _walk_stages(df, {"A": "cli"})[1].expansion_env()["A"] == "cli"


def test_bare_child_arg_takes_the_global_value_over_the_inherited_one() -> None:
    """BuildKit's dispatchArg: no default and no --build-arg, the global value wins if there
    is one; otherwise the variable keeps the value it has."""
    df = _df("ARG A=global\nFROM scratch AS base\nARG A=parent\nFROM base\nARG A\n")
    assert _walk_stages(df, {})[1].expansion_env()["A"] == "global"


def test_child_env_overrides_an_inherited_arg_and_parent_env_wins_over_it() -> None:
    df = _df("FROM scratch AS base\nARG A=1 B=1\nENV B=env\nFROM base\nENV A=child-env\nARG B=2\n")
    child = _walk_stages(df, {})[1]
    assert child.expansion_env() == {"A": "child-env", "B": "env"}
    assert child.run_env()["A"] == "child-env"


def test_redeclared_bare_arg_keeps_its_value_in_the_same_stage() -> None:
    df = _df("FROM scratch\nARG A=1\nARG A\n")
    assert _walk(df, {}, {}).expansion_env()["A"] == "1"


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
