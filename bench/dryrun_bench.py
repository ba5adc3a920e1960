"""Dry-run and no-change bench: what "would this rebuild hit?" costs at 20,000 files.

Issue 13 asks a dry run of an unchanged 20,000-file context to cost under 0.3 s. This bench
times, for each scenario, `layerbuild build --dry-run` and the real no-change `layerbuild build`
after one untimed build, and beside them, in the same run, buildah's no-change rebuild
(`buildah bud --layers`, chroot isolation) as the reference: no builder has a dry run, and
BuildKit (Debian's dockerd 20.10) fails most builds on this machine (see docs/cache.md).

Three scenarios, so a figure is not tuned for one:
- `flat`: bench/scale_bench.py's 20,000 small files plus four big ones (200 MB), its 7-step
  Dockerfile (RUN, `COPY . /ctx/`, RUN du, RUN find, RUN, ENV);
- `monorepo`: 20,000 files of 64 B to 16 KiB five levels deep under src/, docs/ and assets/,
  a manifest and a lock file, and a 10-step Dockerfile that copies the manifest first, then
  each tree on its own, with ARG, WORKDIR and ENV between;
- `node`: a Node.js app's shape, written after the other two were tuned: 20,000 files, most
  in node_modules/ (packages of Pareto-distributed sizes, some with node_modules of their own),
  the rest under src/ and public/, a .git/ and logs that a `.dockerignore` leaves out, and a
  Dockerfile that copies the package files first, then node_modules/, then `COPY . .`.

Each layerbuild command runs as a user runs it: a fresh `python -m layerbuild` process, its
modules byte-compiled as `pip install .` leaves them, the context aged past the stat cache's
racy margin. Medians of --runs.

    python bench/dryrun_bench.py [--runs 5] [--work /tmp/dryrun-bench] [--tools layerbuild,buildah]
        [--watch]

With --watch, layerbuild's dry run and no-change build are timed again with `layerbuild watch`
running (the opt-in watcher that takes the walk off the build, docs/cache.md), each checked to
have been served by it.
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pack_bench import generate_large, generate_small, text_pool  # noqa: E402
from bench.rebuild_bench import busybox_base, sh  # noqa: E402
from bench.scale_bench import DOCKERFILE as FLAT_DOCKERFILE  # noqa: E402
from bench.scale_bench import watching  # noqa: E402

MONOREPO_DOCKERFILE = """\
FROM busybox
ARG APP=/srv/app
WORKDIR $APP
COPY manifest.json lock.json ./
RUN wc -c manifest.json lock.json > /deps
COPY src ./src
RUN find src -type f | wc -l > /src-count
COPY assets ./assets
COPY docs ./docs
ENV APP_HOME=$APP MODE=release
"""
NODE_DOCKERFILE = """\
FROM busybox
WORKDIR /app
COPY package.json package-lock.json ./
RUN echo installed > /installed
COPY node_modules ./node_modules
COPY . .
RUN ls -R src | wc -l > /src-count
USER 1000:1000
CMD ["node", "src/index.js"]
"""
NODE_IGNORE = ".git\n*.log\ncoverage/\n**/.cache\n"
FILES = 20_000
RACY_S = 2.5  # the stat cache's racy margin is 2 s


def flat(ctx: Path) -> None:
    rng = random.Random(42)
    pool = text_pool(rng, 8 << 20)
    generate_small(ctx, rng, pool, FILES, (256, 2048))
    generate_large(ctx, pool, 200 << 20)
    (ctx / "Dockerfile").write_text(FLAT_DOCKERFILE)


def monorepo(ctx: Path) -> None:
    rng = random.Random(7)
    pool = text_pool(rng, 8 << 20)
    trees = (("src", 14_000), ("docs", 4_000), ("assets", FILES - 18_000))
    for top, count in trees:
        for i in range(count):
            parts = [f"d{(i >> shift) % 6}" for shift in (0, 3, 6, 9)]
            directory = ctx.joinpath(top, *parts)
            directory.mkdir(parents=True, exist_ok=True)
            size = int(rng.lognormvariate(7, 1.2)) % (16 << 10) + 64
            start = rng.randrange(len(pool) - size)
            (directory / f"f{i:05d}.dat").write_bytes(pool[start : start + size])
    (ctx / "manifest.json").write_text('{"name": "app", "version": "1.0.0"}\n')
    (ctx / "lock.json").write_text('{"lockfileVersion": 3}\n')
    (ctx / "Dockerfile").write_text(MONOREPO_DOCKERFILE)


def node(ctx: Path) -> None:
    rng = random.Random(1313)
    pool = text_pool(rng, 4 << 20)

    def write(path: Path, low: int, high: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        size = rng.randint(low, high)
        start = rng.randrange(len(pool) - size)
        path.write_bytes(pool[start : start + size])

    left = 15_000  # node_modules: packages until these files are written
    package = 0
    while left > 0:
        files = min(left, int(rng.paretovariate(1.1) * 8))
        root = ctx / "node_modules" / f"pkg-{package:04d}"
        for i in range(files):
            nested = root / "node_modules" / f"dep-{i % 3}" if i % 11 == 10 else root
            write(nested / ("lib", "dist", "")[i % 3] / f"m{i}.js", 80, 6000)
        write(root / "package.json", 60, 400)
        left -= files + 1
        package += 1
    for i in range(3_000):
        write(ctx / "src" / f"feature{i % 40}" / f"part{i % 7}" / f"c{i}.ts", 200, 9000)
    for i in range(1_000):
        write(ctx / "public" / f"img{i % 9}" / f"a{i}.svg", 300, 30000)
    for i in range(900):
        write(ctx / ".git" / "objects" / f"{i % 256:02x}" / f"o{i}", 100, 3000)
    for i in range(20):
        write(ctx / "logs" / f"run{i}.log", 1000, 5000)
    (ctx / "package.json").write_text('{"name": "web", "version": "2.1.0"}\n')
    (ctx / "package-lock.json").write_text('{"lockfileVersion": 3}\n')
    (ctx / ".dockerignore").write_text(NODE_IGNORE)
    (ctx / "Dockerfile").write_text(NODE_DOCKERFILE)


SCENARIOS: dict[str, Callable[[Path], None]] = {"flat": flat, "monorepo": monorepo, "node": node}


def scenario(work: Path, name: str) -> Path:
    ctx = work / f"ctx-{name}"
    done = work / f"ctx-{name}.done"
    if not done.exists():
        shutil.rmtree(ctx, ignore_errors=True)
        ctx.mkdir(parents=True)
        print(f"generating {ctx} ...", flush=True)
        SCENARIOS[name](ctx)
        done.touch()
    return ctx


def wall(argv: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, env=env, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr.decode()}")
    return seconds


def layerbuild(
    work: Path, ctx: Path, base: Path, runs: int, watch: bool = False
) -> dict[str, list[float]]:
    store = work / "lb-store"
    shutil.rmtree(store, ignore_errors=True)
    compileall.compile_dir(REPO / "layerbuild", quiet=1)  # as `pip install .` leaves it
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SOURCE_DATE_EPOCH", None)
    cmd = [sys.executable, "-m", "layerbuild", "--root", str(store)]
    sh(*cmd, "load", base, "-t", "busybox:latest", env=env)
    build = [*cmd, "build", "-q", "--network", "none", "-t", "bench:1", str(ctx)]
    wall(build, env)
    time.sleep(RACY_S)
    wall(build, env)  # settles the stat cache past the margin, as a user's second build does
    times: dict[str, list[float]] = {"dry-run": [], "no-change": []}
    for _ in range(runs):
        times["dry-run"].append(wall([*build[:6], "--dry-run", *build[6:]], env))
        times["no-change"].append(wall(build, env))
    if watch:
        with watching([*cmd, "watch", str(ctx)], env, work / "watch.log", served=2 * runs):
            times["dry-run watched"] = []
            times["no-change watched"] = []
            for _ in range(runs):
                times["dry-run watched"].append(wall([*build[:6], "--dry-run", *build[6:]], env))
                times["no-change watched"].append(wall(build, env))
    return times


def buildah(work: Path, ctx: Path, base: Path, runs: int) -> dict[str, list[float]]:
    sh("buildah", "rmi", "--all", "--force", check=False)
    sh("skopeo", "copy", "-q", f"oci:{base}:latest", "containers-storage:localhost/busybox:latest")
    build = ["buildah", "bud", "--isolation", "chroot", "--layers", "--pull-never", "-q"]
    build += ["-t", "localhost/bench:1", str(ctx)]
    wall(build)
    return {"no-change": [wall(build) for _ in range(runs)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/dryrun-bench"))
    parser.add_argument("--tools", default="layerbuild,buildah")
    parser.add_argument("--scenarios", default="flat,monorepo,node")
    parser.add_argument(
        "--watch", action="store_true", help="also with `layerbuild watch` running"
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    base = busybox_base(args.work)
    tools = args.tools.split(",")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    rows = []
    for name in args.scenarios.split(","):
        ctx = scenario(args.work, name)
        times: dict[str, dict[str, list[float]]] = {}
        if "layerbuild" in tools:
            times["layerbuild"] = layerbuild(args.work, ctx, base, args.runs, args.watch)
        if "buildah" in tools:
            times["buildah"] = buildah(args.work, ctx, base, args.runs)
        for tool, phases in times.items():
            for phase, values in phases.items():
                print(f"{name:<9} {tool:<10} {phase:<9} " + " ".join(f"{v:.3f}" for v in values))
        med = {(t, p): statistics.median(v) for t, ph in times.items() for p, v in ph.items()}
        rows.append((name, med))
    print(f"load average at end: {os.getloadavg()[0]:.2f}\n")
    print("| 20,000 files | layerbuild --dry-run | layerbuild no-change | buildah no-change "
          "| dry-run / buildah | no-change / buildah |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, med in rows:
        dry, same = med.get(("layerbuild", "dry-run")), med.get(("layerbuild", "no-change"))
        ref = med.get(("buildah", "no-change"))
        cells = [_s(dry), _s(same), _s(ref), _ratio(dry, ref), _ratio(same, ref)]
        print(f"| {name} | " + " | ".join(cells) + " |")
    watched = [(name, med) for name, med in rows if ("layerbuild", "dry-run watched") in med]
    if watched:
        print("\n| 20,000 files, `layerbuild watch` running | --dry-run | no-change |")
        print("| --- | --- | --- |")
        for name, med in watched:
            dry = med[("layerbuild", "dry-run watched")]
            same = med[("layerbuild", "no-change watched")]
            print(f"| {name} | {_s(dry)} | {_s(same)} |")


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a / b:.2f}x"


if __name__ == "__main__":
    main()
