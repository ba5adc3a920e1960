"""ARGs inherited by stages built FROM a stage (BuildKit since 2024, moby/buildkit#5381): the
value reaches RUN, ONBUILD triggers and the cache key of the child; the child's own ARG or ENV
overrides, and --build-arg reaches an inherited ARG through the parent's declaration."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, make_context

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.tools]

BASE = "FROM busybox AS base\nARG A=from-base B=b-base\n"


def test_two_and_three_levels_of_stages_see_the_args(lb: Layerbuild, tmp_path: Path) -> None:
    """A child and a grandchild see the base stage's ARG values; the child's own ARG reaches
    the grandchild too. An unrelated stage sees nothing."""
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": BASE + "FROM base AS child\nARG C=from-child\n"
            'RUN echo "$A $B" > /child\n'
            'FROM busybox AS other\nRUN echo "[$A]" > /other\n'
            "FROM child\nCOPY --from=other /other /other\n"
            'RUN echo "$A $B $C" > /grandchild\n'
        },
    )
    root = lb.rootfs(ctx)
    assert (root / "child").read_text() == "from-base b-base\n"
    assert (root / "grandchild").read_text() == "from-base b-base from-child\n"
    assert (root / "other").read_text() == "[]\n"


def test_onbuild_trigger_in_a_child_stage_sees_the_inherited_arg(
    lb: Layerbuild, tmp_path: Path
) -> None:
    ctx = make_context(
        tmp_path,
        {"Dockerfile": BASE + 'ONBUILD RUN echo "trigger $A" > /trigger\nFROM base\n'},
    )
    assert (lb.rootfs(ctx) / "trigger").read_text() == "trigger from-base\n"


def test_child_arg_and_env_override_inherited_values(lb: Layerbuild, tmp_path: Path) -> None:
    """The child's ARG with a default and its ENV replace the inherited values; a bare `ARG B`
    (no default, no global, no --build-arg) keeps the inherited one, as in BuildKit."""
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": BASE + "ARG E=e-base\n"
            "FROM base\nARG A=from-child\nARG B\nENV E=env-child\n"
            'RUN echo "$A $B $E" > /out\n'
        },
    )
    assert (lb.rootfs(ctx) / "out").read_text() == "from-child b-base env-child\n"


def test_build_arg_reaches_the_inherited_arg(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(
        tmp_path, {"Dockerfile": BASE + 'FROM base AS mid\nFROM mid\nRUN echo "$A" > /out\n'}
    )
    root = lb.rootfs(ctx, "--build-arg", "A=from-cli")
    assert (root / "out").read_text() == "from-cli\n"
    proc = lb.build(ctx, "--build-arg", "A=from-cli")
    assert "not consumed" not in proc.stderr


def test_changing_the_inherited_arg_misses_the_child_run(lb: Layerbuild, tmp_path: Path) -> None:
    """The inherited value is part of the child's RUN key: a new --build-arg value misses it
    (and names the arg), the parent's steps still hit, and the old value hits again."""
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox AS base\nRUN echo base > /base\nARG A\n"
            'FROM base\nRUN echo "$A" > /out\n'
        },
    )
    first = lb.report_steps(ctx, "--build-arg", "A=1")
    assert [s["cache"] for s in first] == ["hit", "miss", "miss", "hit", "miss"]
    second = lb.report_steps(ctx, "--build-arg", "A=2")
    assert [s["cache"] for s in second] == ["hit", "hit", "hit", "hit", "miss"]
    assert second[-1]["reason"] == "build arg A changed"
    third = lb.report_steps(ctx, "--build-arg", "A=1")
    assert [s["cache"] for s in third] == ["hit"] * 5
