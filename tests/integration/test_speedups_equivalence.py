"""The speed-ups change how fast an image is built, never which image: the same builds, once
with every speed-up that can be turned off turned off and once with all of them on, each in a
fresh store, give the same manifest and layer digests and the same --report steps (cache hit
or miss, key, reason and layer of every step).

What each mode turns off or on (OFF and ON below), by the variables cli/build.py reads into
BuildOptions fields; with them all off the engine runs with engine/speedups/base.NullSpeedups,
the reference behaviour (tests/unit/engine/speedups/test_choice.py), with them on with
engine/speedups/active.ActiveSpeedups:
- the context walkers (context/prefetch.py): LAYERBUILD_PREFETCH;
- quick COPY keys (engine/filesteps.quick_key): LAYERBUILD_QUICK_KEYS;
- speculative packing of a cold COPY (engine/layerwriter.py): LAYERBUILD_SPECULATIVE_PACKING;
- a COPY's snapshot written from its Changes, ahead in a forked child (speedups/copykeys.py,
  store/materialize.py, childcall.py), else unpacked from its blob: LAYERBUILD_SNAPSHOTS_AHEAD;
- run-ahead (engine/speedups/runahead.py): LAYERBUILD_RUN_AHEAD;
- reused gzip blocks (store/blockcache.py): LAYERBUILD_BLOCK_REUSE;
- a missed COPY's layer spliced from the same step's previous layer (image/tarsplice.py):
  LAYERBUILD_SPLICE;
- RUN's snapshotter (sandbox/runner.py): LAYERBUILD_SNAPSHOTTER=copy (the full copy) or overlay;
- the stat cache's digests (context/statcache.py) have no switch: off, every entry of the
  context gets a new ctime just before each build, so no lstat may vouch for a recorded
  digest; on, the context is aged past the stat cache's 2 s racy margin.

Each mode checks that it did what it says where the build shows it (the stat cache's counters,
run-ahead's progress note, the modules it imported), so a switch that stops working fails here
rather than making the two runs alike. The `big/` files make a cold COPY packed speculatively.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Layerbuild
from tests.support.imports import WatchedLayerbuild

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.slow]

EPOCH = "1700000000"
MTIME_NS = 1_600_000_000 * 10**9  # before EPOCH: no mtime is clamped, every one is kept
AGE_S = 2.3  # the stat cache's racy margin is 2 s
AHEAD = "ran while the layer below was packed"  # run-ahead's progress note
MATERIALIZE = "layerbuild.store.materialize"  # imported only to write a snapshot from Changes


@dataclass(frozen=True)
class Mode:
    env: dict[str, str]
    aged: bool  # whether the context is aged before each build (else its ctimes made new)


SWITCHES = (
    "LAYERBUILD_PREFETCH",
    "LAYERBUILD_QUICK_KEYS",
    "LAYERBUILD_SPECULATIVE_PACKING",
    "LAYERBUILD_SNAPSHOTS_AHEAD",
    "LAYERBUILD_RUN_AHEAD",
    "LAYERBUILD_BLOCK_REUSE",
    "LAYERBUILD_SPLICE",
)
OFF = Mode({**dict.fromkeys(SWITCHES, "0"), "LAYERBUILD_SNAPSHOTTER": "copy"}, aged=False)
ON = Mode({**dict.fromkeys(SWITCHES, "1"), "LAYERBUILD_SNAPSHOTTER": "overlay"}, aged=True)

STAGES = """\
FROM busybox AS base
COPY --chown=1000:1000 src/*.txt /app/
COPY src/ /src/
RUN cat /app/a.txt /src/sub/b.txt > /joined && mkdir /out && cp /app/*.txt /out/

FROM busybox
COPY --from=base /joined /out/ /final/
COPY --chown=7:8 big/ /big/
RUN find /final /big /src 2>/dev/null | sort | xargs stat -c '%n %u:%g %a %s' > /listing
"""
WHOLE_CONTEXT = """\
FROM busybox
WORKDIR /w
COPY . .
RUN find . -type f | sort | xargs sha256sum > /sums
COPY --chown=5:5 src/sub/ /sub/
"""


def _big(seed: int) -> bytes:
    return random.Random(seed).randbytes(3 << 20)  # three of them: past 8 MiB unseen


FILES: dict[str, str | bytes] = {
    ".dockerignore": "src/*.md\n",
    "src/a.txt": "a\n",
    "src/b.txt": "b\n",
    "src/notes.md": "ignored\n",
    "src/sub/b.txt": "sub b\n",
    "src/sub/deep/c.bin": bytes(range(256)) * 64,
    **{f"big/part{i}.bin": _big(i) for i in range(3)},
}
# the builds of each mode, in order: cold, unchanged, one file changed
EDITS: tuple[dict[str, str | bytes], ...] = ({}, {}, {"src/a.txt": "a, changed\n"})


@dataclass(frozen=True)
class Built:
    """What one build gave: compared between the modes as a whole."""

    digest: str
    layers: list[str]
    steps: list[dict[str, Any]]


@dataclass(frozen=True)
class Observed:
    """What one build did: each mode checks its own."""

    stats: dict[str, int]
    spliced: int  # file entries copied from a previous layer
    progress: str
    imported: frozenset[str]


def write(ctx: Path, files: dict[str, str | bytes]) -> None:
    """Write `files` with the same mtime in both modes; only what was written gets a new
    ctime (a ctime is part of what the stat cache recorded)."""
    touched: set[Path] = set()
    for rel, data in files.items():
        path = ctx / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        touched |= {Path(rel), *Path(rel).parents}
    for path in sorted(touched, key=lambda p: -len(p.parts)):  # a directory after its entries
        os.utime(ctx / path, ns=(MTIME_NS, MTIME_NS), follow_symlinks=False)


def settle(ctx: Path, mode: Mode) -> None:
    """Age the context (speed-ups on) or give every entry a new ctime (off), so that the
    quick keys and the stat cache may vouch for it, or may not."""
    if mode.aged:
        time.sleep(AGE_S)
        return
    for path in [ctx, *ctx.rglob("*")]:
        os.utime(path, ns=(MTIME_NS, MTIME_NS), follow_symlinks=False)  # sets ctime to now


def build(lb: WatchedLayerbuild, ctx: Path, mode: Mode, n: int) -> tuple[Built, Observed]:
    stats, report = ctx.parent / f"stats-{n}.jsonl", ctx.parent / f"report-{n}.json"
    splices = ctx.parent / f"splices-{n}.jsonl"
    env = {
        **mode.env,
        "LAYERBUILD_STATCACHE_STATS": str(stats),
        "LAYERBUILD_SPLICE_STATS": str(splices),
    }
    epoch = f"SOURCE_DATE_EPOCH={EPOCH}"
    proc = lb.build(ctx, "-t", "eq:1", "--build-arg", epoch, "--report", report, env=env)
    imported = lb.imports().imported
    steps = json.loads(report.read_text())["steps"]
    for step in steps:
        del step["seconds"]
        del step["start"]  # a time, as "seconds" is
    image = lb.inspect("eq:1")
    counters = [json.loads(line) for line in stats.read_text().splitlines()]
    total = {k: sum(c[k] for c in counters) for k in counters[0]}
    spliced = sum(json.loads(line)["spliced"] for line in splices.read_text().splitlines())
    built = Built(image["Digest"], image["Layers"], steps)
    return built, Observed(total, spliced, proc.stderr, imported)


def run_builds(
    store: Layerbuild, root: Path, dockerfile: str, mode: Mode
) -> tuple[list[Built], list[Observed]]:
    """The builds of EDITS in a fresh store, with the speed-ups of `mode`."""
    lb = WatchedLayerbuild(store.store, record=root / "imports.json")
    ctx = root / "ctx"
    ctx.mkdir(parents=True)
    write(ctx, {"Dockerfile": dockerfile, **FILES})
    built, observed = [], []
    for n, edit in enumerate(EDITS):
        write(ctx, edit)
        settle(ctx, mode)
        b, o = build(lb, ctx, mode, n)
        built.append(b)
        observed.append(o)
    return built, observed


def check_off(observed: list[Observed]) -> None:
    for o in observed:
        assert (o.stats["listed"], o.stats["selections"]) == (0, 0), o.stats  # no quick keys
        assert AHEAD not in o.progress
        assert MATERIALIZE not in o.imported  # every lower unpacked from its blob
        assert o.spliced == 0  # every file of a layer read from its file
    # the unchanged rebuild read its files again: no lstat could vouch for them
    assert observed[1].stats["misses"] > 0 and observed[1].stats["racy"] > 0, observed[1].stats


def check_on(observed: list[Observed]) -> None:
    assert all(o.stats["listed"] > 0 for o in observed), [o.stats for o in observed]  # walkers
    # the unchanged rebuild was keyed from names and lstat alone: not one file read
    assert (observed[1].stats["hits"], observed[1].stats["misses"]) == (0, 0), observed[1].stats
    # the RUN after the COPY that the changed file made miss (a cold COPY of big/ is packed
    # speculatively instead, with no run-ahead after it)
    assert AHEAD in observed[2].progress, observed[2].progress
    assert MATERIALIZE in observed[0].imported and MATERIALIZE in observed[2].imported
    # the COPYs the changed file made miss took their unchanged files from their last layers
    assert observed[2].spliced > 0


@pytest.mark.parametrize("dockerfile", [STAGES, WHOLE_CONTEXT], ids=["stages", "whole-context"])
def test_speedups_off_and_on_build_the_same(
    new_store: Callable[[str], Layerbuild], tmp_path: Path, dockerfile: str
) -> None:
    off, off_seen = run_builds(new_store("off-store"), tmp_path / "off", dockerfile, OFF)
    on, on_seen = run_builds(new_store("on-store"), tmp_path / "on", dockerfile, ON)
    check_off(off_seen)
    check_on(on_seen)
    assert {s["cache"] for s in on[1].steps} == {"hit"}
    assert "miss" in {s["cache"] for s in on[2].steps}
    for n, (a, b) in enumerate(zip(off, on, strict=True)):
        assert a.steps == b.steps, f"build {n}: the --report steps differ"
        assert a.layers == b.layers, f"build {n}: the layers differ"
        assert a.digest == b.digest, f"build {n}: the manifests differ"
