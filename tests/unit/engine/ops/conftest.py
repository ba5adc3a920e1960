"""A stage as its ops see it, and instructions parsed from Dockerfile lines."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import pytest

from layerbuild.digest import Digest
from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.parser import parse_dockerfile
from layerbuild.dockerfile.scope import VarScope
from layerbuild.dockerfile.source import DockerfileSource
from layerbuild.engine import meta as m
from layerbuild.engine.state import StageState

PARENT = Digest("sha256:" + "a" * 64)

MakeStage = Callable[..., StageState]


def parse(line: str) -> ins.Instruction:
    """The one instruction of `line`, in a stage FROM scratch."""
    dockerfile = parse_dockerfile(DockerfileSource("Dockerfile", f"FROM scratch\n{line}\n"))
    return dockerfile.stages[0].instructions[0]


def _stage(
    env: Mapping[str, str] | None = None,
    user: str = "",
    workdir: str = "",
    build_args: Mapping[str, str] | None = None,
) -> StageState:
    config = m.new_stage_config(None, "amd64", "linux")
    container = config.config
    for name, value in (env or {}).items():
        container = container.with_env(name, value)
    container = replace(container, user=user, working_dir=workdir)
    config = replace(config, config=container)
    scope = VarScope.for_stage({}, build_args or {}, container.env_dict())
    return StageState("build", m.StageMeta(config), (), scope, key=PARENT)


@pytest.fixture
def stage() -> MakeStage:
    return _stage
