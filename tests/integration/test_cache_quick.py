"""The quick path of a COPY key (FileSteps.quick_key): once a context has aged past the stat
cache's racy margin, a rebuild keys COPY from the names and lstat of the selected entries alone,
reading no file and asking the stat cache for nothing. It must still miss on every real change.

The context is aged by sleeping: ctime cannot be set back, and only entries whose ctime is
older than the 2 s margin may vouch for a recorded digest.

Every test runs twice: with the context walked ahead by the CLI's walker processes
(context/prefetch.py; a literal source is then keyed from their listing), and with
LAYERBUILD_PREFETCH=0, where each COPY walks its own selection.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Layerbuild, make_context

DOCKERFILE = """\
FROM busybox
COPY src/ /app/
COPY --from=busybox /bin/true /true
RUN cat /app/a.txt > /copy
"""
FILES = {"Dockerfile": DOCKERFILE, "src/a.txt": "hello\n", "src/sub/b.txt": "b\n"}
AGE_S = 2.3  # the stat cache's racy margin is 2 s


@pytest.fixture(autouse=True, params=["listing", "own-walk"])
def prefetch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    mode = str(request.param)
    monkeypatch.setenv("LAYERBUILD_PREFETCH", "1" if mode == "listing" else "0")
    return mode


def build(lb: Layerbuild, ctx: Path, stats: Path) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(--report steps, stat cache counters of this build)."""
    report = ctx.parent / f"report-{time.monotonic_ns()}.json"
    stats.unlink(missing_ok=True)
    lb.build(ctx, "-t", "q:1", "--report", report, env={"LAYERBUILD_STATCACHE_STATS": str(stats)})
    counters = json.loads(stats.read_text().splitlines()[-1])
    check_keyed_as_asked(counters)
    return json.loads(report.read_text())["steps"], counters


def check_keyed_as_asked(counters: dict[str, int]) -> None:
    """With walkers, the (literal) `COPY src/` was keyed from their listing: on a context of
    a few files they are done long before the builder is imported."""
    if os.environ["LAYERBUILD_PREFETCH"] == "0":
        assert counters["listed"] == 0, counters
    else:
        assert counters["listed"] >= 1, counters


def caches(steps: list[dict[str, Any]]) -> list[str]:
    return [s["cache"] for s in steps]


@pytest.fixture
def aged(lb: Layerbuild, tmp_path: Path) -> Path:
    """A context built once after it aged, so its selections are recorded."""
    ctx = make_context(tmp_path, FILES)
    time.sleep(AGE_S)
    steps, counters = build(lb, ctx, tmp_path / "stats")
    assert caches(steps) == ["hit", "miss", "miss", "miss"]
    assert counters["misses"] > 0  # the files were read once
    return ctx


def test_unchanged_rebuild_reads_nothing(lb: Layerbuild, aged: Path, tmp_path: Path) -> None:
    steps, counters = build(lb, aged, tmp_path / "stats")
    assert caches(steps) == ["hit"] * 4
    # not even a stat cache probe: the selection's fingerprint stood for the digest
    assert (counters["hits"], counters["misses"]) == (0, 0)


def test_bytes_changed_with_mtime_put_back_misses(
    lb: Layerbuild, aged: Path, tmp_path: Path
) -> None:
    path = aged / "src" / "a.txt"
    before = path.stat()
    path.write_text("jello\n")  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # touch -r
    steps, counters = build(lb, aged, tmp_path / "stats")
    assert caches(steps) == ["hit", "miss", "miss", "miss"]
    assert "a.txt" in steps[1]["reason"]
    assert counters["misses"] >= 1


def test_touch_alone_still_hits(lb: Layerbuild, aged: Path, tmp_path: Path) -> None:
    """A new mtime changes the fingerprint, so the full path runs, and finds the same
    content: a hit, as before the quick path existed."""
    future = time.time() + 100
    os.utime(aged / "src" / "a.txt", (future, future))
    steps, _ = build(lb, aged, tmp_path / "stats")
    assert caches(steps) == ["hit"] * 4


@pytest.mark.parametrize(
    "change",
    ["chmod", "symlink", "new-file", "hardlink", "rename"],
)
def test_every_kind_of_change_misses(
    lb: Layerbuild, aged: Path, tmp_path: Path, change: str
) -> None:
    src = aged / "src"
    if change == "chmod":
        (src / "a.txt").chmod(0o600)
    elif change == "symlink":
        (src / "link").symlink_to("a.txt")
    elif change == "new-file":
        (src / "sub" / "c.txt").write_text("c\n")
    elif change == "hardlink":
        os.link(src / "sub" / "b.txt", src / "b-again.txt")
    else:
        (src / "sub" / "b.txt").rename(src / "sub" / "renamed.txt")
    steps, _ = build(lb, aged, tmp_path / "stats")
    assert caches(steps)[1] == "miss", steps[1]


def test_pruned_layer_falls_back_to_a_full_build(
    lb: Layerbuild, aged: Path, tmp_path: Path
) -> None:
    """A recorded selection whose step is no longer in the cache is rebuilt, not trusted."""
    lb.ok("rmi", "q:1")
    lb.ok("cache", "prune", "--all")
    steps, _ = build(lb, aged, tmp_path / "stats")
    assert caches(steps)[1:] == ["miss"] * 3
    lb.ok("run", "q:1", "cat", "/app/sub/b.txt")


MULTI = """\
FROM busybox AS base
COPY *.txt /txt/
FROM busybox
COPY --from=base /txt /from-base/
COPY --from=extra . /extra/
COPY src/ /app/
"""


def test_globs_stages_named_contexts_and_dockerignore(lb: Layerbuild, tmp_path: Path) -> None:
    """The quick path for every kind of COPY source: a glob, another stage, a named context
    directory, a context filtered by .dockerignore. Unchanged: all hit, nothing read; each
    change misses where it must, and an ignored file changes nothing."""
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": MULTI,
            ".dockerignore": "src/ignored*\n",
            "a.txt": "a\n",
            "src/kept": "k\n",
            "src/ignored1": "i\n",
        },
    )
    extra = make_context(tmp_path, {"e/f": "extra\n"}, "extra")
    stats = tmp_path / "stats"

    def run() -> tuple[list[str], dict[str, int]]:
        report = tmp_path / f"report-{time.monotonic_ns()}.json"
        stats.unlink(missing_ok=True)
        lb.build(
            ctx,
            "-t",
            "m:1",
            "--build-context",
            f"extra={extra}",
            "--report",
            report,
            env={"LAYERBUILD_STATCACHE_STATS": str(stats)},
        )
        steps = json.loads(report.read_text())["steps"]
        counters = json.loads(stats.read_text().splitlines()[-1])
        check_keyed_as_asked(counters)
        return [f"{s['stage']}:{s['cache']}" for s in steps], counters

    time.sleep(AGE_S)
    run()
    steps, counters = run()
    assert all(s.endswith(":hit") for s in steps) and (counters["hits"], counters["misses"]) == (
        0,
        0,
    )
    # a new file the glob selects: the base stage's COPY misses, and so does COPY --from=base
    (ctx / "b.txt").write_text("b\n")
    steps, _ = run()
    assert steps[1].endswith("miss") and steps[3].endswith("miss"), steps
    # the named context: same size, mtime put back
    path = extra / "e" / "f"
    before = path.stat()
    path.write_text("EXTRA\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    steps, _ = run()
    assert steps[1].endswith("hit") and steps[4].endswith("miss"), steps
    # a file .dockerignore hides: nothing misses
    (ctx / "src" / "ignored2").write_text("i2\n")
    steps, _ = run()
    assert all(s.endswith(":hit") for s in steps), steps
    # ... until .dockerignore stops hiding it
    (ctx / ".dockerignore").write_text("src/ignored1\n")
    steps, _ = run()
    assert steps[-1].endswith("miss") and all(s.endswith(":hit") for s in steps[:-1]), steps


def test_a_heredoc_copy_follows_the_build_arg_it_expands(lb: Layerbuild, tmp_path: Path) -> None:
    """A heredoc's body is expanded with the stage's variables: a build arg that changes it
    must miss even when the files on disk did not change at all."""
    dockerfile = "FROM busybox\nARG V=1\nCOPY <<EOF /v.txt\nv=$V\nEOF\n"
    ctx = make_context(tmp_path, {"Dockerfile": dockerfile})
    time.sleep(AGE_S)
    for value, expected in (("1", "miss"), ("1", "hit"), ("2", "miss"), ("1", "hit")):
        report = tmp_path / f"report-{time.monotonic_ns()}.json"
        lb.build(ctx, "-t", "h:1", "--build-arg", f"V={value}", "--report", report)
        steps = json.loads(report.read_text())["steps"]
        assert steps[2]["cache"] == expected, (value, steps[2])
        assert lb.ok("run", "h:1", "cat", "/v.txt").stdout == f"v={value}\n"
