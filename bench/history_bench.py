"""History benchmark: what the build history costs a no-change rebuild (docs/history.md).

A context of --files small text files (bench/pack_bench.py's generator, 256 B to 2 KiB) and
the Dockerfile below is built once; then --runs rounds each time one no-change rebuild with
the history on and one with it off (LAYERBUILD_HISTORY=0), in alternating order so that drift
on a loaded machine falls on both. Printed: the median and the best wall time of each, and the
difference of the medians, which the issue bounds at 10 ms; the same for the CPU time of the
build's process and the children it waited for (wait4), which drifts less with the load.

Process wall times on a shared 2-core machine wobble by more than that, so the bench also
times the history's own work in this process: a recorder started (the "running" record
written) and finished (the whole record written, the bounds applied) for a record of the same
steps, over a history already holding --kept records.

    python bench/history_bench.py [--files 20000] [--runs 10] [--kept 200] [--work DIR]

Needs root (the RUN step) and the busybox base (made once under --work).
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pack_bench import generate_small, text_pool  # noqa: E402
from bench.rebuild_bench import busybox_base  # noqa: E402

DOCKERFILE = """\
FROM busybox
ENV APP=/ctx
COPY . /ctx/
RUN find /ctx -type f | wc -l > /count
ENV DONE=1
"""


def context(work: Path, files: int) -> Path:
    ctx = work / f"ctx-{files}"
    if not (ctx / "Dockerfile").exists():
        rng = random.Random(7)
        generate_small(ctx, rng, text_pool(rng, 4 << 20), files, (256, 2048))
        (ctx / "Dockerfile").write_text(DOCKERFILE)
    return ctx


def layerbuild(store: Path, *args: str | Path, history: bool = True) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and the children it waited for)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), LAYERBUILD_HISTORY="1" if history else "0")
    argv = [sys.executable, "-m", "layerbuild", "--root", str(store), *map(str, args)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait again
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def in_process(store: Path, ctx: Path, kept: int, rounds: int = 50) -> list[float]:
    """Seconds of the history's own work per build: start, the events of every step, finish."""
    from layerbuild.engine.buildrecord import start_recording
    from layerbuild.engine.events import StepDone, StepStarted
    from layerbuild.engine.options import BuildOptions
    from layerbuild.engine.report import BuildReport
    from layerbuild.store.buildhistory import BuildHistory

    history = BuildHistory(store / "bench-history", max_builds=kept)
    options = BuildOptions(context=ctx)
    times = []
    for _ in range(rounds + kept):  # the first `kept` fill the history to its bound
        t0 = time.perf_counter()
        report = BuildReport()
        recorder = start_recording(options, report, history)
        for n, line in enumerate(DOCKERFILE.splitlines(), start=1):
            started = StepStarted(n, "stage-0", n, 5, n, line)
            for event in (started, StepDone(n, 0.001, cached=True)):
                report(event)
                recorder(event)
        recorder.finish(None)
        times.append(time.perf_counter() - t0)
    return times[kept:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--kept", type=int, default=200, help="records already in the history")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "history-bench")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    compileall.compile_dir(REPO / "layerbuild", quiet=1)  # as `pip install .` leaves it
    ctx = context(args.work, args.files)
    store = args.work / "store"
    if not store.exists():
        layerbuild(store, "load", busybox_base(args.work), "-t", "busybox:latest")
    layerbuild(store, "build", "-q", ctx)  # the cache, the stat cache
    layerbuild(store, "build", "-q", ctx)  # a settled no-change build
    on: list[tuple[float, float]] = []
    off: list[tuple[float, float]] = []
    for n in range(args.runs):
        pair = [(True, on), (False, off)] if n % 2 == 0 else [(False, off), (True, on)]
        for history, times in pair:
            times.append(layerbuild(store, "build", "-q", ctx, history=history))
    load = os.getloadavg()
    print(f"no-change rebuild, {args.files} files, {args.runs} runs each, load {load[0]:.2f}")
    for label, runs in (("history on", on), ("history off", off)):
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        print(
            f"  {label:<12} wall median {statistics.median(walls):.3f}s best {min(walls):.3f}s"
            f"   CPU median {statistics.median(cpus):.3f}s best {min(cpus):.3f}s"
        )
    for i, what in ((0, "wall"), (1, "CPU")):
        diff = (statistics.median(r[i] for r in on) - statistics.median(r[i] for r in off))
        print(f"  difference   {what} {diff * 1000:+.1f} ms (medians; bound 10 ms)")
    own = in_process(store, ctx, args.kept)
    print(
        f"history's own work per build (in process, {args.kept} records kept): "
        f"median {statistics.median(own) * 1000:.2f} ms, worst {max(own) * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
