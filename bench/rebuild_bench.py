"""Rebuild benchmark: cold build, no-change rebuild, one-small-file-changed rebuild.

A Dockerfile of several COPY and RUN steps over a context of 20,000 small files plus a few big
ones (about 200 MB, bench/pack_bench.py's `generate`), built by layerbuild, by
`buildah bud --layers` (chroot isolation) and by BuildKit (Debian's dockerd), on the same files
in the same run. Each tool starts with an empty cache and its own copy of the busybox base:
its store, images and build cache from an earlier round are deleted, then the disk is given
SETTLE_S seconds (on this VM's thin disk, creating files right after a big delete is up to 50
times slower for a while, whichever tool does it) before the cold build is timed.
Prints wall seconds per phase, the ratios layerbuild/BuildKit and layerbuild/buildah, and how
many files layerbuild re-hashed in each phase (its StatCache counters, which it appends to
$LAYERBUILD_STATCACHE_STATS).

    python bench/rebuild_bench.py [--mb 200] [--work /tmp/rebuild-bench] [--tools ...] [--runs N]

Needs root, buildah, skopeo and docker.io (dockerd, /usr/bin/docker); the dockerd is started
with /work/shared/tools/dockerd-start when --dockerd-tools points there (the default).
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pack_bench import SMALL_FILES, generate  # noqa: E402

DOCKERFILE = """\
FROM busybox
COPY pkg000/ /app/pkg000/
RUN ls /app/pkg000 > /listing
COPY large0.bin large1.bin /data/
RUN wc -c /data/large0.bin > /size
COPY . /src/
RUN find /src -type f | wc -l > /count
ENV READY=1
"""
CHANGED = Path("pkg150") / "mod3" / "file00150.txt"  # one small file, read by COPY . only
PHASES = ("cold", "no-change", "one-file")
SETTLE_S = 10.0
DOCKER = "/usr/bin/docker"  # Debian's client: the newer one on PATH may lack buildx


def sh(*args: str | Path, env: dict[str, str] | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, check=False
    )
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def timed(fn: Callable[[], object]) -> float:
    # flush what earlier phases and tools left dirty first: on a shared disk, the writeback of
    # one tool's 200 MB otherwise lands in the next one's timing
    os.sync()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def prepare(work: Path, mb: int) -> tuple[Path, Path]:
    ctx = work / "ctx"
    if not (ctx / "large0.bin").exists():
        shutil.rmtree(ctx, ignore_errors=True)
        ctx.mkdir(parents=True)
        print(f"generating a {mb} MB context of {SMALL_FILES} small files in {ctx}", flush=True)
        generate(ctx, mb)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    base = busybox_base(work)
    # files younger than the stat cache's racy margin (2 s) are always re-hashed: let them age
    time.sleep(2.5)
    return ctx, base


def busybox_base(work: Path) -> Path:
    """The busybox base image as an OCI layout in `work` (made once, from Debian's package)."""
    base = work / "busybox"
    if not (base / "index.json").exists():
        sh(sys.executable, REPO / "fixtures" / "make_busybox_base.py", base)
    return base


def run_phases(ctx: Path, build: Callable[[], object]) -> list[float]:
    """Cold, no-change and one-file builds with `build`; the changed file is put back."""
    path = ctx / CHANGED
    original = path.read_bytes()
    os.sync()
    time.sleep(SETTLE_S)  # after the tool's clean-up: see the module docstring
    times = [timed(build), timed(build)]
    path.write_bytes(bytes([original[0] ^ 1]) + original[1:])  # one byte, same size
    try:
        times.append(timed(build))
    finally:
        path.write_bytes(original)
    return times


# -- the tools ---------------------------------------------------------------------------------


def layerbuild(work: Path, ctx: Path, base: Path, hashed: list[int]) -> list[float]:
    store = work / "lb-store"
    shutil.rmtree(store, ignore_errors=True)
    # run from the checkout as `pip install .` would leave it, with bytecode: under
    # PYTHONDONTWRITEBYTECODE, every run would otherwise compile each module again
    compileall.compile_dir(REPO / "layerbuild", quiet=1)
    stats = work / "statcache.jsonl"
    stats.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "LAYERBUILD_STATCACHE_STATS": str(stats)}
    env.pop("SOURCE_DATE_EPOCH", None)
    cmd = [sys.executable, "-m", "layerbuild", "--root", str(store)]
    sh(*cmd, "load", base, "-t", "busybox:latest", env=env)
    times = run_phases(ctx, lambda: sh(*cmd, "build", "-q", "-t", "bench:1", ctx, env=env))
    hashed.extend(json.loads(line)["misses"] for line in stats.read_text().splitlines())
    return times


def buildah(work: Path, ctx: Path, base: Path) -> list[float]:
    sh("buildah", "rm", "--all", check=False)
    sh("buildah", "rmi", "--all", "--force", check=False)
    sh("skopeo", "copy", "-q", f"oci:{base}:latest", "containers-storage:localhost/busybox:latest")
    return run_phases(
        ctx,
        lambda: sh(
            "buildah",
            "bud",
            "--isolation",
            "chroot",
            "--layers",
            "--pull-never",
            "-q",
            "-t",
            "localhost/bench:1",
            ctx,
        ),  # fmt: skip
    )


def buildkit(work: Path, ctx: Path, base: Path, tools: Path) -> list[float]:
    with dockerd(work, base, tools) as env:
        build = [DOCKER, "build", "-q", "--network=none", "-t", "bench:1", str(ctx)]
        return run_phases(ctx, lambda: sh(*build, env=env))


@contextlib.contextmanager
def dockerd(work: Path, base: Path, tools: Path) -> Iterator[dict[str, str]]:
    """A dockerd of its own (started with `tools`/dockerd-start), holding the busybox base and
    no build cache or bench image; yields the environment its client needs."""
    state = work / "dockerd"
    host = sh(tools / "dockerd-start", state).strip().splitlines()[-1]
    env = {**os.environ, "DOCKER_HOST": host, "DOCKER_BUILDKIT": "1"}
    try:
        archive = work / "busybox-docker.tar"
        archive.unlink(missing_ok=True)
        sh(
            "skopeo",
            "copy",
            "-q",
            f"oci:{base}:latest",
            f"docker-archive:{archive}:busybox:latest",
        )
        # the image of an earlier round goes too: its layers would spare the cold build's
        # export writing them, as layerbuild's and buildah's stores are emptied
        sh(DOCKER, "rmi", "-f", "bench:1", env=env, check=False)
        sh(DOCKER, "load", "-i", archive, env=env)
        sh(DOCKER, "builder", "prune", "-af", env=env)
        yield env
    finally:
        sh(tools / "dockerd-stop", state, check=False)


# -- main --------------------------------------------------------------------------------------


def report(results: dict[str, list[float]], hashed: list[int]) -> None:
    tools = list(results)
    print(f"\n{'phase':<12}" + "".join(f"{t:>12}" for t in tools), end="")
    ratios = [t for t in ("buildkit", "buildah") if t in results and "layerbuild" in results]
    print("".join(f"{'lb/' + t:>14}" for t in ratios))
    for i, phase in enumerate(PHASES):
        row = f"{phase:<12}" + "".join(f"{results[t][i]:>11.3f}s" for t in tools)
        row += "".join(f"{results['layerbuild'][i] / results[t][i]:>14.2f}" for t in ratios)
        print(row)
    if hashed:
        print(f"\nlayerbuild files hashed per phase (stat cache misses): {hashed}")
    lb = results.get("layerbuild")
    if lb and "buildkit" in results:
        half = all(lb[i] <= results["buildkit"][i] / 2 for i in range(3))
        print(f"each phase at most half of BuildKit's time: {'yes' if half else 'NO'}")
    if lb:
        print(f"no-change rebuild under 0.3 s: {'yes' if lb[1] < 0.3 else 'NO'} ({lb[1]:.3f}s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--work", type=Path, default=Path("/tmp/rebuild-bench"))
    parser.add_argument("--tools", default="layerbuild,buildah,buildkit")
    parser.add_argument("--dockerd-tools", type=Path, default=Path("/work/shared/tools"))
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="rounds of all tools (each from an empty cache); the best time of each phase counts",
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    ctx, base = prepare(args.work, args.mb)
    results: dict[str, list[float]] = {}
    hashed: list[int] = []
    for round_ in range(args.runs):
        # the tools take turns round by round: a disk that slows down or speeds up over the
        # run then weighs on all of them
        for tool in args.tools.split(","):
            print(f"{tool} (round {round_ + 1}/{args.runs}) ...", flush=True)
            if tool == "layerbuild":
                times = layerbuild(args.work, ctx, base, hashed if round_ == 0 else [])
            elif tool == "buildah":
                times = buildah(args.work, ctx, base)
            elif tool == "buildkit":
                times = buildkit(args.work, ctx, base, args.dockerd_tools)
            else:
                raise SystemExit(f"unknown tool {tool!r}: layerbuild, buildah or buildkit")
            print("  " + "  ".join(f"{p} {t:.3f}s" for p, t in zip(PHASES, times, strict=True)))
            best = results.get(tool, times)
            results[tool] = [min(a, b) for a, b in zip(best, times, strict=True)]
    if args.runs > 1:
        print(f"\nbest of {args.runs} rounds:")
    report(results, hashed)


if __name__ == "__main__":
    main()
