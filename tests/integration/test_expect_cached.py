"""`build --expect-cached[=STAGE,...]`: the CI gate of the second of two runs. A fully cached
build passes; the first step that would run stops the build with its own exit status (12), the
step's line and the miss reason, and the tag keeps the previous image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, make_context

DOCKERFILE = """\
FROM busybox AS base
COPY base.txt /base.txt
RUN cat /base.txt > /seen

FROM base AS app
COPY src/ /app/
RUN cat /app/a.txt > /copy
"""


@pytest.fixture
def ctx(lb: Layerbuild, tmp_path: Path) -> Path:
    ctx = make_context(
        tmp_path, {"Dockerfile": DOCKERFILE, "base.txt": "b\n", "src/a.txt": "hello\n"}
    )
    lb.build(ctx, "-t", "gate:1")
    return ctx


def _image(lb: Layerbuild) -> str:
    out = lb.ok("images", "--format", "json").stdout
    rows = {f"{i['repository']}:{i['tag']}": i["digest"] for i in json.loads(out)}
    return str(rows["gate:1"])


def test_a_fully_cached_build_passes(lb: Layerbuild, ctx: Path) -> None:
    before = _image(lb)
    proc = lb("build", "--expect-cached", "-t", "gate:1", ctx)
    assert proc.returncode == 0, proc.stderr
    assert _image(lb) == before


def test_the_first_step_that_would_run_stops_the_build(lb: Layerbuild, ctx: Path) -> None:
    before = _image(lb)
    (ctx / "src" / "a.txt").write_text("changed\n")
    proc = lb("build", "--progress", "plain", "--expect-cached", "-t", "gate:1", ctx)
    assert proc.returncode == 12, proc.stderr
    error = proc.stderr[proc.stderr.index("error:") :]
    # the step, its line and why it missed; nothing after it ran
    assert "Dockerfile:6 (stage app) COPY src/ /app/" in error
    assert "--expect-cached: the step is not cached (/app/a.txt changed)" in error
    assert "cat /app/a.txt" not in proc.stderr.split("error:")[0].split("COPY src/")[-1]
    assert "Traceback" not in proc.stderr
    assert _image(lb) == before  # the tag keeps the previous image


def test_only_the_named_stages_are_gated(lb: Layerbuild, ctx: Path) -> None:
    (ctx / "src" / "a.txt").write_text("changed\n")
    ok = lb("build", "--expect-cached=BASE", "-t", "gate:1", ctx)
    assert ok.returncode == 0, ok.stderr  # the base stage hits; app may run
    (ctx / "base.txt").write_text("changed\n")
    proc = lb("build", "--expect-cached=base", "-t", "gate:1", ctx)
    assert proc.returncode == 12
    assert "Dockerfile:2 (stage base) COPY base.txt /base.txt" in proc.stderr


def test_expect_cached_with_no_cache_is_refused(lb: Layerbuild, ctx: Path) -> None:
    proc = lb("build", "--expect-cached", "--no-cache", ctx)
    assert proc.returncode == 2
    assert "--expect-cached cannot be used with --no-cache" in proc.stderr
