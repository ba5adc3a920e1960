"""The build cache through the CLI: every hit and miss rule of the cache issue, read back from
`--report`, plus `cache ls|du|prune|compare`, `prune`, concurrent and killed builds, and
`--cache-to`/`--cache-from type=local`."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cachecases import SIBLING_STAGES
from tests.support.cli import Layerbuild, hash_blobs, make_context, running, stray_files

DOCKERFILE = """\
FROM busybox
ARG V=1
COPY src/ /app/
RUN echo "v=$V" > /version && cat /app/a.txt > /copy
ENV DONE=yes
"""
FILES = {"Dockerfile": DOCKERFILE, "src/a.txt": "hello\n", "src/b.txt": "b\n", "other/x": "x\n"}


def build(lb: Layerbuild, ctx: Path, *args: str | Path) -> list[dict[str, Any]]:
    """Build `ctx` as x:1 and return the steps of its --report."""
    report = ctx.parent / f"report-{time.monotonic_ns()}.json"
    lb.build(ctx, "-t", "x:1", "--report", report, *args)
    steps = json.loads(report.read_text())["steps"]
    assert isinstance(steps, list)
    return steps


def caches(steps: list[dict[str, Any]]) -> list[str]:
    return [s["cache"] for s in steps]


def reasons(steps: list[dict[str, Any]]) -> list[str]:
    return [s["reason"] for s in steps]


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    return make_context(tmp_path, FILES)


@pytest.fixture
def built(lb: Layerbuild, ctx: Path) -> Path:
    """`ctx` built once, so that every test starts from a warm cache."""
    assert caches(build(lb, ctx))[1:] == ["miss"] * 4
    return ctx


ALL_HIT = ["hit"] * 5
FROM_COPY = ["hit", "hit", "miss", "miss", "miss"]


def test_unchanged_rebuild_hits_every_step(lb: Layerbuild, built: Path) -> None:
    assert caches(build(lb, built)) == ALL_HIT
    assert caches(build(lb, built)) == ALL_HIT


def test_touching_mtime_does_not_miss(lb: Layerbuild, built: Path) -> None:
    future = time.time() + 100
    os.utime(built / "src" / "a.txt", (future, future))
    assert caches(build(lb, built)) == ALL_HIT


def test_changing_an_ignored_or_unread_file_does_not_miss(lb: Layerbuild, built: Path) -> None:
    (built / ".dockerignore").write_text("src/b.txt\n")
    steps = build(lb, built)
    assert caches(steps)[3] == "miss"  # b.txt no longer lands: a real change
    (built / "src" / "b.txt").write_text("ignored, changed\n")
    (built / "other" / "x").write_text("read by no step\n")
    assert caches(build(lb, built)) == ALL_HIT


def test_changing_a_byte_misses_that_step_and_after(lb: Layerbuild, built: Path) -> None:
    (built / "src" / "a.txt").write_text("hellO\n")
    steps = build(lb, built)
    assert caches(steps) == FROM_COPY
    assert reasons(steps)[2:] == ["/app/a.txt changed", "parent step missed", "parent step missed"]


def test_changing_a_mode_misses(lb: Layerbuild, built: Path) -> None:
    (built / "src" / "a.txt").chmod(0o755)
    steps = build(lb, built)
    assert caches(steps) == FROM_COPY
    assert reasons(steps)[2] == "/app/a.txt changed"


def test_changing_a_symlink_target_misses(lb: Layerbuild, ctx: Path) -> None:
    (ctx / "src" / "link").symlink_to("a.txt")
    assert caches(build(lb, ctx))[2] == "miss"
    assert caches(build(lb, ctx)) == ALL_HIT
    (ctx / "src" / "link").unlink()
    (ctx / "src" / "link").symlink_to("b.txt")
    steps = build(lb, ctx)
    assert caches(steps) == FROM_COPY
    assert reasons(steps)[2] == "/app/link changed"


def test_bytes_changed_with_mtime_put_back_still_miss(lb: Layerbuild, built: Path) -> None:
    path = built / "src" / "a.txt"
    before = path.stat()
    time.sleep(0.01)
    path.write_text("jello\n")  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # touch -r
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    assert caches(build(lb, built)) == FROM_COPY


def test_a_build_arg_the_step_sees_misses_from_that_step(lb: Layerbuild, built: Path) -> None:
    steps = build(lb, built, "--build-arg", "V=2")
    assert caches(steps) == ["hit", "hit", "hit", "miss", "miss"]
    assert reasons(steps)[3:] == ["build arg V changed", "parent step missed"]


def test_an_earlier_step_change_misses_everything_after(lb: Layerbuild, built: Path) -> None:
    (built / "Dockerfile").write_text(DOCKERFILE.replace("ARG V=1", "ARG V=1\nENV E=1"))
    steps = build(lb, built)
    assert caches(steps) == ["hit", "hit", "miss", "miss", "miss", "miss"]
    assert reasons(steps)[2].startswith("instruction changed (was: COPY src/ /app/)")
    assert reasons(steps)[3:5] == ["parent step missed"] * 2


def test_a_sibling_stage_unchanged_still_hits(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, SIBLING_STAGES)
    build(lb, ctx)
    (ctx / "a" / "f").write_text("A\n")
    by_stage: dict[str, list[str]] = {}
    for step in build(lb, ctx):
        by_stage.setdefault(step["stage"], []).append(step["cache"])
    assert by_stage == {
        "a": ["hit", "miss", "miss"],
        "b": ["hit", "hit", "hit"],
        "stage-2": ["hit", "hit", "miss"],  # b's output is the same; a's changed
    }


def test_no_cache_and_no_cache_filter(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox AS dep\nRUN echo dep > /d\n"
            "FROM busybox\nCOPY --from=dep /d /d\nRUN cat /d > /e\n",
        },
    )
    build(lb, ctx)
    steps = build(lb, ctx, "--no-cache")
    assert caches(steps) == ["hit", "miss", "hit", "miss", "miss"]  # FROM steps always "hit"
    assert all(s["reason"] == "cache disabled (--no-cache)" for s in steps if s["index"] > 1)
    steps = build(lb, ctx, "--no-cache-filter", "dep")
    assert [(s["stage"], s["cache"]) for s in steps if s["index"] > 1] == [
        ("dep", "miss"),
        ("stage-1", "hit"),  # dep rebuilt to the same bytes: same key downstream
        ("stage-1", "hit"),
    ]


# -- cache ls / du / prune / compare -------------------------------------------------------------


def test_cache_ls_du_and_prune(lb: Layerbuild, built: Path) -> None:
    rows = json.loads(lb.ok("cache", "ls", "--format", "json").stdout)
    steps = {row["step"] for row in rows}
    assert {"COPY src/ /app/", "ENV DONE=yes"} <= steps
    table = lb.ok("cache", "ls").stdout
    assert "LAST USED" in table and "COPY src/ /app/" in table
    du = json.loads(lb.ok("cache", "du", "--format", "json").stdout)
    assert du["reclaimable"] == 0 and du["total"] > 0  # every cached layer is in x:1
    (built / "src" / "a.txt").write_text("new\n")
    build(lb, built)  # x:1 moves on: the old COPY and RUN layers are only cached now
    du = json.loads(lb.ok("cache", "du", "--format", "json").stdout)
    assert du["reclaimable"] > 0
    lb.ok("prune")  # plain gc keeps cached layers
    (built / "src" / "a.txt").write_text("hello\n")
    assert caches(build(lb, built)) == ALL_HIT
    out = lb.ok("cache", "prune").stdout
    assert "removed 2 cache records" in out
    assert json.loads(lb.ok("cache", "du", "--format", "json").stdout)["reclaimable"] == 0
    lb.ok("cache", "prune", "--all")
    assert json.loads(lb.ok("cache", "ls", "--format", "json").stdout) == []
    assert lb.inspect("x:1")["Layers"]  # the tagged image is whole
    lb.ok("save", "x:1", "-o", built.parent / "x.tar")
    assert hash_blobs(lb.store) == []


def test_cache_prune_filters(lb: Layerbuild, built: Path) -> None:
    (built / "src" / "a.txt").write_text("new\n")
    build(lb, built)
    assert "removed 0 cache records" in lb.ok("cache", "prune", "--filter", "until=1h").stdout
    assert "removed 0 cache records" in lb.ok("cache", "prune", "--keep-storage", "1GB").stdout
    assert "removed 2 cache records" in lb.ok("cache", "prune", "--keep-storage", "0").stdout
    bad = lb("cache", "prune", "--filter", "since=1h")
    assert bad.returncode != 0 and "until=DURATION" in bad.stderr


def test_cache_compare_reports(lb: Layerbuild, ctx: Path) -> None:
    a, b = ctx.parent / "a.json", ctx.parent / "b.json"
    lb.build(ctx, "-t", "x:1", "--report", a)
    (ctx / "src" / "a.txt").write_text("changed\n")
    lb.build(ctx, "-t", "x:1", "--report", b)
    out = lb.ok("cache", "compare", a, b).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["STAGE", "LINE", "INSTRUCTION", "A", "B", "REASON", "(B)"]
    copy = next(line for line in lines if "COPY src/" in line)
    assert copy.split()[-4:] == ["miss", "miss", "/app/a.txt", "changed"]
    assert "A: 5 steps, 1 hits, 4 misses, hit ratio 20%" in out
    assert "B: 5 steps, 2 hits, 3 misses, hit ratio 40%" in out
    data = json.loads(lb.ok("cache", "compare", "--format", "json", a, b).stdout)
    assert [s["b"] for s in data["steps"]] == FROM_COPY
    assert data["b"]["hit_ratio"] == 0.4
    missing = lb("cache", "compare", a, "nosuch:image")
    assert missing.returncode != 0 and "neither a report file" in missing.stderr


def test_cache_compare_image_names(lb: Layerbuild, ctx: Path) -> None:
    lb.build(ctx, "-t", "x:1")
    (ctx / "src" / "a.txt").write_text("changed\n")
    lb.build(ctx, "-t", "x:2")
    out = lb.ok("cache", "compare", "x:1", "x:2").stdout
    assert "/app/a.txt changed" in out
    assert "B: 5 steps, 2 hits, 3 misses" in out


# -- safety: concurrent, killed, pruned-during builds --------------------------------------------


def _slow_context(tmp_path: Path, name: str, seconds: float) -> Path:
    return make_context(
        tmp_path,
        {
            "Dockerfile": f"FROM busybox\nCOPY f /f\nRUN sleep {seconds} && cat /f > /g\n"
            f"RUN echo {name} > /name\n",
            "f": f"{name}\n",
        },
        f"ctx-{name}",
    )


@pytest.mark.slow
def test_two_builds_with_run_steps_at_once(lb: Layerbuild, tmp_path: Path) -> None:
    procs = [
        lb.spawn("build", "--progress", "plain", "-t", f"{n}:1", _slow_context(tmp_path, n, 1))
        for n in ("one", "two")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    for n in ("one", "two"):
        again = build(lb, _slow_context(tmp_path, n, 1))
        assert caches(again)[-3:] == ["hit"] * 3
    assert hash_blobs(lb.store) == [] and stray_files(lb.store) == []


@pytest.mark.slow
def test_prune_during_a_build_waits_and_the_build_succeeds(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = _slow_context(tmp_path, "slow", 3)
    proc = lb.spawn("build", "--progress", "plain", "-t", "slow:1", ctx)
    deadline = time.monotonic() + 30
    while not running("sleep", "3"):
        assert time.monotonic() < deadline and proc.poll() is None, "the RUN step never started"
        time.sleep(0.02)
    t0 = time.monotonic()
    pruned = lb.ok("cache", "prune", "--all")
    assert time.monotonic() - t0 > 0.5  # it waited for the build's shared lock
    assert "removed" in pruned.stdout
    lb.ok("prune")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lb.ok("save", "slow:1", "-o", tmp_path / "slow.tar")  # every blob of the image is there
    assert hash_blobs(lb.store) == []


@pytest.mark.slow
def test_sigkill_during_a_build_then_the_next_build_works(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = _slow_context(tmp_path, "killed", 5)
    proc = lb.spawn("build", "--progress", "plain", "-t", "k:1", ctx)
    deadline = time.monotonic() + 30
    while not running("sleep", "5"):  # the RUN step's command (its PID namespace is below ours)
        assert time.monotonic() < deadline and proc.poll() is None, "the RUN step never started"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    (ctx / "Dockerfile").write_text((ctx / "Dockerfile").read_text().replace("sleep 5", "true"))
    steps = build(lb, ctx)
    assert caches(steps)[:2] == ["hit", "hit"] and caches(steps)[2:] == ["miss", "miss"]
    assert caches(build(lb, ctx)) == ["hit"] * 4
    assert hash_blobs(lb.store) == []
    assert stray_files(lb.store) == []


# -- --cache-to / --cache-from type=local -------------------------------------------------------


def test_local_cache_gives_a_fresh_store_hits(
    lb: Layerbuild, new_store: Any, ctx: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    lb.build(ctx, "-t", "x:1", "--cache-to", f"type=local,dest={cache},mode=max")
    index = json.loads((cache / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((cache / "blobs" / "sha256" / manifest_digest).read_text())
    assert manifest["config"]["mediaType"] == "application/vnd.layerbuild.cache.config.v1+json"
    fresh: Layerbuild = new_store("fresh")
    steps = build(fresh, ctx, "--cache-from", f"type=local,src={cache}")
    assert caches(steps) == ALL_HIT
    assert fresh.inspect("x:1")["Digest"] == lb.inspect("x:1")["Digest"]
    (ctx / "src" / "a.txt").write_text("changed\n")
    assert caches(build(new_store("fresh2"), ctx, "--cache-from", f"type=local,src={cache}")) == [
        "hit",
        "hit",
        "miss",
        "miss",
        "miss",
    ]


def test_cache_mode_min_exports_the_final_stage_only(
    lb: Layerbuild, new_store: Any, tmp_path: Path
) -> None:
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox AS tool\nRUN echo t > /t && echo x > /x\nRUN echo u > /u\n"
            "FROM busybox\nCOPY --from=tool /t /t\nRUN cat /t > /v\n",
        },
    )
    lb.build(ctx, "-t", "m:1", "--cache-to", f"type=local,dest={tmp_path / 'min'}")
    lb.build(ctx, "-t", "m:1", "--cache-to", f"type=local,dest={tmp_path / 'max'},mode=max")
    by_mode = {}
    for mode in ("min", "max"):
        src = f"type=local,src={tmp_path / mode}"
        steps = build(new_store(f"store-{mode}"), ctx, "--cache-from", src)
        by_mode[mode] = [(s["stage"], s["cache"]) for s in steps if s["index"] > 1]
    assert by_mode["max"] == [("tool", "hit")] * 2 + [("stage-1", "hit")] * 2
    # min: the tool stage rebuilds, to the same bytes, so the final stage still hits
    assert by_mode["min"] == [("tool", "miss")] * 2 + [("stage-1", "hit")] * 2


def test_cache_from_a_missing_dir_builds_without_it(lb: Layerbuild, ctx: Path) -> None:
    proc = lb.build(ctx, "--cache-from", f"type=local,src={ctx.parent / 'none'}")
    assert "no cache at" in proc.stdout + proc.stderr
    bad = lb("build", ctx, "--cache-to", "type=local")
    assert bad.returncode != 0 and "dest=" in bad.stderr
