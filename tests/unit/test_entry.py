"""layerbuild/entry.py: which command lines fork the context walkers before the CLI is imported,
and its table of `build`'s options against the click command's own."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from layerbuild import entry
from layerbuild.cli.build import _prefetch, build_cmd
from layerbuild.entry import FLAG_OPTIONS, VALUE_OPTIONS, build_target


def test_the_option_tables_are_the_build_command_s() -> None:
    values: set[str] = set()
    flags: set[str] = set()
    for param in build_cmd.params:
        if isinstance(param, click.Option):
            names = set(param.opts + param.secondary_opts)
            (flags if param.is_flag or param.count else values).update(names)
    # --check builds nothing, so it is left out: a command line with it forks no walkers
    assert (VALUE_OPTIONS, FLAG_OPTIONS | {"--check"}) == (values, flags)


@pytest.mark.parametrize(
    ("argv", "target"),
    [
        (["build"], (".", None)),
        (["build", "ctx"], ("ctx", None)),
        (["--root", "/s", "--debug", "build", "-t", "a:1", "ctx"], ("ctx", None)),
        (["--root=/s", "build", "ctx", "-f", "other/Dockerfile"], ("ctx", "other/Dockerfile")),
        (["build", "--file=D", "--dry-run", "--no-cache", "-q", "ctx"], ("ctx", "D")),
        (["build", "--dry-run=strict", "--expect-cached", "ctx"], ("ctx", None)),
        (["build", "--expect-cached=a,b", "--build-arg", "X=ctx2", "ctx"], ("ctx", None)),
        (["build", "-t", "x", "--", "-ctx"], ("-ctx", None)),
        (["build", "-"], ("-", None)),
    ],
)
def test_a_build_s_context_and_dockerfile(argv: list[str], target: tuple[str, str | None]) -> None:
    assert build_target(argv) == target


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["images"],
        ["--root"],
        ["--unknown", "build", "ctx"],
        ["build", "--check", "ctx"],
        ["build", "--help"],
        ["build", "--made-up", "ctx"],
        ["build", "-qt", "x", "ctx"],  # a cluster of short options: not read
        ["build", "-t=x", "ctx"],
        ["build", "a", "b"],
    ],
)
def test_anything_else_forks_nothing_early(argv: list[str]) -> None:
    assert build_target(argv) is None


@pytest.mark.root  # a non-root user's walkers start after it enters its user namespace
def test_the_build_adopts_early_walkers_of_its_own_context_only(tmp_path: Path) -> None:
    ctx, other = tmp_path / "ctx", tmp_path / "other"
    for root in (ctx, other):
        (root / "d").mkdir(parents=True)
        (root / "d" / "f").write_text("x")
    (ctx / ".dockerignore").write_text("ignored\n")
    (ctx / "ignored").write_text("y")

    entry.start_walkers(["build", "-t", "a:1", str(ctx)])
    early = entry._early
    assert early is not None
    adopted = _prefetch(ctx, None)
    assert adopted is early and entry.take_walkers() is None
    listing = adopted.get(wait=True)
    assert listing is not None and sorted(listing.paths) == ["", ".dockerignore", "d", "d/f"]
    adopted.close()

    entry.start_walkers(["build", str(ctx)])
    early = entry._early
    assert early is not None
    mine = _prefetch(other, None)  # another context: the early walkers are stopped
    assert mine is not None and mine is not early and early.get(wait=False) is None
    mine.close()
