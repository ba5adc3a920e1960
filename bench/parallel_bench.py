"""Independent stages one after another (--jobs 1) and at once (--jobs 2), same run.

    python bench/parallel_bench.py [--runs 3] [--seconds 3] [--work DIR]

A Dockerfile of two stages that each RUN a CPU-bound shell loop of about --seconds (its
iteration count calibrated on this machine's busybox first) and a final stage that copies a
file from each. Every step runs (--no-cache; --network none, so that slirp4netns is not part
of it). The rounds alternate --jobs 1 and --jobs 2; the best of --runs of each counts, with the
load average before each round printed beside it, since on a 2-core machine the parallel
figure is only as good as the second core is free. Figures only: this never asserts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOOP = "i=0; while [ $i -lt {n} ]; do i=$((i+1)); done"
DOCKERFILE = """\
FROM busybox AS a
RUN sh -c '{loop}' && echo a > /a
FROM busybox AS b
RUN sh -c '{loop}' && echo b > /b
FROM busybox
COPY --from=a /a /out/a
COPY --from=b /b /out/b
"""


def sh(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(list(map(str, args)), capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def calibrate(seconds: float) -> int:
    """The loop count that takes about `seconds` in busybox's sh on one core here."""
    busybox = shutil.which("busybox") or sys.exit("needs busybox (busybox-static)")
    n = 100_000
    while True:
        t0 = time.perf_counter()
        sh(busybox, "sh", "-c", LOOP.format(n=n))
        took = time.perf_counter() - t0
        if took > 0.5:
            return int(n * seconds / took)
        n *= 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="parallel-bench-"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("LAYERBUILD_ROOT", None)
    lb = [sys.executable, "-m", "layerbuild", "--root", str(work / "lb")]
    sh(sys.executable, REPO / "fixtures" / "make_busybox_base.py", work / "busybox")
    sh(*lb, "load", work / "busybox", "-t", "busybox", env=env)
    n = calibrate(args.seconds)
    ctx = work / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(loop=LOOP.format(n=n)))
    print(f"cores: {len(os.sched_getaffinity(0))}; loop of {n} iterations (~{args.seconds}s)")
    build = [*lb, "build", "--no-cache", "--network", "none", "--progress", "quiet"]
    sh(*build, "--jobs", "1", ctx, env=env)  # the base's snapshots unpacked once
    best: dict[str, float] = {}
    for round_ in range(1, args.runs + 1):
        for jobs in ("1", "2"):
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            sh(*build, "--jobs", jobs, ctx, env=env)
            took = time.perf_counter() - t0
            best[jobs] = min(best.get(jobs, took), took)
            print(f"round {round_} --jobs {jobs}: {took:6.2f}s (load {load:.2f})", flush=True)
    serial, parallel = best["1"], best["2"]
    print(f"best --jobs 1 (serial):   {serial:6.2f}s")
    print(f"best --jobs 2 (parallel): {parallel:6.2f}s")
    print(f"parallel/serial: {parallel / serial:.2f} (0.5 is the ideal on two free cores)")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
