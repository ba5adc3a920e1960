"""Cache records chain on the results they were made on, through the CLI: a `--no-cache`
build that failed or was killed, `--no-cache-filter`, two builders sharing a cache, and a
damaged record never give an image whose files do not fit together, nor a failing build.

Every Dockerfile here has a step whose output is not reproducible (`/big`, random bytes) and a
step after it that checksums it (`/sum`): an image is consistent when its /sum is the md5 of its
/big."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Layerbuild, hash_blobs, make_context, running, stray_files

pytestmark = [pytest.mark.root, pytest.mark.overlay]

NOT_REPRODUCIBLE = (
    "the step before was rebuilt with a different result (its output is not reproducible)"
)
ISSUE = """\
FROM busybox
RUN head -c 1000 /dev/urandom > /big
RUN --mount=type=secret,id=s,required=false sh -c '[ ! -s /run/secrets/s ]' && md5sum /big > /sum
"""
PLAIN = """\
FROM busybox
RUN head -c 1000 /dev/urandom > /big
RUN md5sum /big > /sum
"""


def build(lb: Layerbuild, ctx: Path, *args: str | Path) -> tuple[list[dict[str, Any]], str]:
    """Build `ctx` as t:1 with its rootfs in `<ctx>/../out`; the --report steps and the output."""
    report = ctx.parent / f"report-{time.monotonic_ns()}.json"
    out = ctx.parent / "out"
    shutil.rmtree(out, ignore_errors=True)
    proc = lb.build(ctx, "-t", "t:1", "--report", report, "-o", f"type=local,dest={out}", *args)
    steps = json.loads(report.read_text())["steps"]
    assert isinstance(steps, list)
    return steps, proc.stdout + proc.stderr


def consistent(ctx: Path) -> bool:
    """Whether the image just built (its rootfs in `<ctx>/../out`) has /sum = md5 of /big."""
    out = ctx.parent / "out"
    big = (out / "big").read_bytes()
    return (out / "sum").read_text().split()[0] == hashlib.md5(big).hexdigest()


def image_id(lb: Layerbuild, ctx: Path, *args: str | Path) -> str:
    iid = ctx.parent / f"iid-{time.monotonic_ns()}"
    lb.build(ctx, "-t", "t:1", "--iidfile", iid, *args)
    return iid.read_text().strip()


def test_a_failed_no_cache_build_does_not_poison_the_cache(lb: Layerbuild, tmp_path: Path) -> None:
    """The issue's reproduction: the failed `--no-cache` build re-recorded step 2 with
    another /big; step 3's record, made on the old /big, must not be taken for it."""
    secret = tmp_path / "secret"
    secret.write_text("not empty\n")
    ctx = make_context(tmp_path, {"Dockerfile": ISSUE})
    steps, _ = build(lb, ctx)
    assert consistent(ctx)
    failed = lb(
        "build", "--progress", "plain", "--no-cache", "--secret", f"id=s,src={secret}", ctx
    )
    assert failed.returncode != 0
    steps, _ = build(lb, ctx)
    assert [s["cache"] for s in steps] == ["hit", "hit", "miss"]
    assert steps[2]["reason"] == NOT_REPRODUCIBLE
    assert consistent(ctx)
    steps, _ = build(lb, ctx)
    assert [s["cache"] for s in steps] == ["hit"] * 3
    assert consistent(ctx)


@pytest.mark.slow
def test_a_no_cache_build_killed_after_the_random_step(lb: Layerbuild, tmp_path: Path) -> None:
    """Killed while the step after the non-reproducible one runs: the store has the new /big
    recorded and the old /sum record beside it; the next build must not combine them."""
    dockerfile = PLAIN.replace("RUN md5sum", "RUN sleep 3 && md5sum")
    ctx = make_context(tmp_path, {"Dockerfile": dockerfile})
    build(lb, ctx)
    proc = lb.spawn("build", "--progress", "plain", "--no-cache", "-t", "t:1", ctx)
    deadline = time.monotonic() + 60
    while not running("sleep", "3"):
        assert time.monotonic() < deadline and proc.poll() is None, "step 3 never started"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    steps, _ = build(lb, ctx)
    assert [s["cache"] for s in steps] == ["hit", "hit", "miss"]
    assert steps[2]["reason"] == NOT_REPRODUCIBLE
    assert consistent(ctx)
    assert hash_blobs(lb.store) == [] and stray_files(lb.store) == []


def test_no_cache_filter_on_a_stage_with_a_random_step(lb: Layerbuild, tmp_path: Path) -> None:
    """The stage built FROM the rebuilt one keeps its key (its inputs did not change) but
    not its records: they were made on the old /big."""
    dockerfile = (
        "FROM busybox AS gen\nRUN head -c 1000 /dev/urandom > /big\n"
        "FROM gen\nRUN md5sum /big > /sum\n"
    )
    ctx = make_context(tmp_path, {"Dockerfile": dockerfile})
    build(lb, ctx)
    steps, _ = build(lb, ctx, "--no-cache-filter", "gen")
    assert [s["cache"] for s in steps] == ["hit", "miss", "hit", "miss"]
    assert steps[3]["reason"] == NOT_REPRODUCIBLE
    assert consistent(ctx)
    steps, _ = build(lb, ctx)
    assert [s["cache"] for s in steps] == ["hit"] * 4
    assert consistent(ctx)


def test_steps_reading_a_rebuilt_stage_see_its_new_result(lb: Layerbuild, tmp_path: Path) -> None:
    """COPY --from and RUN --mount from= a stage whose output is not reproducible: after
    `--no-cache-filter gen` they read gen's new files, not the ones of its old result."""
    dockerfile = (
        "FROM busybox AS gen\nRUN head -c 1000 /dev/urandom > /big\n"
        "FROM busybox\nCOPY --from=gen /big /big\n"
        "RUN --mount=type=bind,from=gen,target=/g md5sum /g/big > /sum\n"
    )
    ctx = make_context(tmp_path, {"Dockerfile": dockerfile})
    build(lb, ctx)
    steps, _ = build(lb, ctx, "--no-cache-filter", "gen")
    assert [s["cache"] for s in steps] == ["hit", "miss", "hit", "miss", "miss"]
    assert steps[3]["reason"] == "/big changed"
    assert consistent(ctx)
    big = (ctx.parent / "out" / "big").read_bytes()
    build(lb, ctx, "--target", "gen")  # gen as the cache has it now
    assert (ctx.parent / "out" / "big").read_bytes() == big


def test_two_builders_sharing_one_cache_never_mix(
    lb: Layerbuild, new_store: Callable[[str], Layerbuild], tmp_path: Path
) -> None:
    """Two stores build the same Dockerfile (each its own /big) and export to one directory;
    a store that imports what they wrote gets one builder's image, whole; one that already
    made its own /big builds a consistent image on it."""
    ctx = make_context(tmp_path, {"Dockerfile": PLAIN})
    shared, first = tmp_path / "shared", tmp_path / "first"
    one = image_id(lb, ctx, "--cache-to", f"type=local,dest={shared},mode=max")
    shutil.copytree(shared, first)
    two = image_id(new_store("b"), ctx, "--cache-to", f"type=local,dest={shared},mode=max")
    assert one != two
    fresh = new_store("c")
    steps, _ = build(fresh, ctx, "--cache-from", f"type=local,src={shared}")
    assert [s["cache"] for s in steps] == ["hit"] * 3 and consistent(ctx)
    assert fresh.inspect("t:1")["Digest"] == two
    both = new_store("d")
    assert image_id(
        both,
        ctx,
        "--cache-from",
        f"type=local,src={first}",
        "--cache-from",
        f"type=local,src={shared}",
    ) in (one, two)
    # a store that built the random step itself, then imports the others' records after it
    own = new_store("e")
    prefix = make_context(tmp_path, {"Dockerfile": PLAIN.rsplit("RUN md5sum", 1)[0]}, "prefix")
    own.build(prefix, "-t", "p:1")
    steps, _ = build(own, ctx, "--cache-from", f"type=local,src={shared}")
    assert [s["cache"] for s in steps] == ["hit", "hit", "miss"]
    assert steps[2]["reason"] == NOT_REPRODUCIBLE and consistent(ctx)


def _record_files(store: Path) -> list[Path]:
    return [p for p in (store / "cache" / "keys").glob("*/*") if not p.name.endswith(".files")]


@pytest.mark.parametrize("damage", ["garbage", "other-layer"])
def test_a_damaged_record_is_dropped_and_the_step_runs_again(
    lb: Layerbuild, tmp_path: Path, damage: str
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": PLAIN})
    build(lb, ctx)
    (path,) = [p for p in _record_files(lb.store) if "md5sum" in p.read_text()]
    if damage == "garbage":
        path.write_text(path.read_text()[:100])
    else:  # whole JSON, but its config names a layer below that this chain does not have
        record = json.loads(path.read_text())
        record["config"]["rootfs"]["diff_ids"][-2] = "sha256:" + "0" * 64
        path.write_text(json.dumps(record))
    steps, output = build(lb, ctx)
    assert "warning: dropped the cache record" in output
    assert [s["cache"] for s in steps] == ["hit", "hit", "miss"]
    assert steps[2]["reason"].startswith("its cache record was dropped")
    assert consistent(ctx)
    steps, output = build(lb, ctx)
    assert [s["cache"] for s in steps] == ["hit"] * 3 and "warning" not in output


@pytest.mark.slow
def test_chaos_random_kills_of_no_cache_builds(lb: Layerbuild, tmp_path: Path) -> None:
    """12 `--no-cache` builds killed at random points, each followed by a plain build that
    must succeed with a consistent image and leave no stray files."""
    dockerfile = (
        "FROM busybox\nRUN sleep 0.3 && head -c 1000 /dev/urandom > /big\n"
        "RUN sleep 0.3 && md5sum /big > /sum\nRUN cat /sum > /copy\n"
    )
    ctx = make_context(tmp_path, {"Dockerfile": dockerfile})
    t0 = time.monotonic()
    build(lb, ctx)
    span = time.monotonic() - t0
    rng = random.Random(16)
    for _ in range(12):
        proc = lb.spawn("build", "--progress", "plain", "--no-cache", "-t", "t:1", ctx)
        time.sleep(rng.uniform(0, span * 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        build(lb, ctx)
        assert consistent(ctx)
        assert (ctx.parent / "out" / "copy").read_bytes() == (
            ctx.parent / "out" / "sum"
        ).read_bytes()
    assert hash_blobs(lb.store) == [] and stray_files(lb.store) == []
