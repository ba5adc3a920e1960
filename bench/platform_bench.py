"""A two-platform build (linux/amd64,linux/arm64), platforms one after another and at once,
beside buildah's, same run.

    python bench/platform_bench.py [--runs 2] [--seconds 2] [--work DIR]

The Dockerfile: the multi-platform busybox base (fixtures/make_multiplatform_busybox.py) and
one CPU-bound RUN, a shell loop of about --seconds on each platform. arm64 runs under QEMU here,
some 30 times slower than amd64 natively, so the loop's iteration count is calibrated for each
architecture first (`layerbuild run --platform P`) and the RUN picks its own by $TARGETARCH:
two platforms of equal work, the case where building them at once can save the most (about
half, on two free cores). Every step runs (--no-cache).

The reference is `buildah build --platform linux/amd64,linux/arm64 --manifest ...` (chroot
isolation, its own storage under --work, the base loaded with skopeo, one image per
architecture gathered into a manifest list), with its own `--jobs 1` and `--jobs 2` (buildah
builds the platforms at once within --jobs too), through the same QEMU binfmt_misc handler.
BuildKit is not: Debian's dockerd (20.10) has no buildx and its builder exports one platform
per build, so it cannot make a two-platform index here.

The rounds alternate the tools and --jobs; the best of --runs of each counts, with the load
average before each build beside it (2 cores: the --jobs 2 figures are only as good as the
second core is free). layerbuild runs with --network none, buildah's chroot isolation with the
host's network: neither sets up a network per RUN. Figures only: this never asserts.
Needs root, buildah, skopeo and qemu-user-static registered (`layerbuild binfmt`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLATFORMS = "linux/amd64,linux/arm64"
LOOP = "i=0; while [ $i -lt {n} ]; do i=$((i+1)); done"
DOCKERFILE = """\
FROM {base}
ARG TARGETARCH
RUN n={amd64}; [ "$TARGETARCH" != arm64 ] || n={arm64}; {loop} && uname -m > /arch
"""


def sh(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(list(map(str, args)), capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def timed(command: Callable[..., object], *args: object) -> float:
    t0 = time.perf_counter()
    command(*args)
    return time.perf_counter() - t0


class Layerbuild:
    def __init__(self, work: Path, layout: Path) -> None:
        self.env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.env.pop("LAYERBUILD_ROOT", None)
        self.cmd = [sys.executable, "-m", "layerbuild", "--root", str(work / "lb")]
        sh(*self.cmd, "load", layout, "-t", "mbusybox:latest", env=self.env)

    def loop_seconds(self, platform: str, n: int) -> float:
        run = [*self.cmd, "run", "--platform", platform, "mbusybox", "sh", "-c"]
        # the sandbox's start, not the loop
        empty = min(timed(self._sh, *run, "true") for _ in range(2))
        return timed(self._sh, *run, LOOP.format(n=n)) - empty

    def _sh(self, *args: str) -> str:
        return sh(*args, env=self.env)

    def build(self, ctx: Path, jobs: str) -> None:
        build = [*self.cmd, "build", "--no-cache", "--network", "none", "--progress", "quiet"]
        sh(*build, "--platform", PLATFORMS, "--jobs", jobs, "-t", "bench:1", ctx, env=self.env)


class Buildah:
    def __init__(self, work: Path, layout: Path) -> None:
        root, run = work / "buildah" / "root", work / "buildah" / "run"
        self.cmd = ["buildah", "--root", str(root), "--runroot", str(run)]
        self.cmd += ["--storage-driver", "overlay"]
        storage = f"containers-storage:[overlay@{root}+{run}]"
        # containers-storage takes no index whole: each image, then a list of them
        rm = [*self.cmd, "manifest", "rm", "localhost/mbusybox:latest"]
        subprocess.run(rm, capture_output=True)  # a --work of an earlier run
        sh(*self.cmd, "manifest", "create", "localhost/mbusybox:latest")
        for arch in ("amd64", "arm64"):
            name = f"localhost/mbusybox-{arch}:latest"
            sh("skopeo", "--override-arch", arch, "copy", "-q", f"oci:{layout}:latest",
               f"{storage}{name}")  # fmt: skip
            sh(*self.cmd, "manifest", "add", "localhost/mbusybox:latest",
               f"containers-storage:{name}")  # fmt: skip

    def build(self, ctx: Path, jobs: str) -> None:
        subprocess.run([*self.cmd, "manifest", "rm", "localhost/bench:1"], capture_output=True)
        build = [*self.cmd, "build", "--isolation", "chroot", "--pull-never", "--no-cache", "-q"]
        sh(*build, "--platform", PLATFORMS, "--jobs", jobs, "--manifest", "localhost/bench:1", ctx)

    def close(self) -> None:
        subprocess.run([*self.cmd, "rmi", "--all", "--force"], capture_output=True)


def calibrate(lb: Layerbuild, platform: str, seconds: float) -> tuple[int, float]:
    """The loop count that takes about `seconds` on `platform`, and the seconds it took."""
    n = 10_000
    while (took := lb.loop_seconds(platform, n)) < 1.0:
        n *= 3
    for _ in range(2):  # once more from nearer: the sandbox's start varies by a tenth
        n = int(n * seconds / took)
        took = lb.loop_seconds(platform, n)
    return n, took


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="platform-bench-"))
    layout = work / "mbusybox"
    sh(sys.executable, REPO / "fixtures" / "make_multiplatform_busybox.py", layout)
    lb, bah = Layerbuild(work, layout), Buildah(work, layout)
    try:
        counts = {}
        for platform in ("linux/amd64", "linux/arm64"):
            n, took = calibrate(lb, platform, args.seconds)
            counts[platform.split("/")[1]] = n
            print(f"{platform}: a loop of {n} iterations, {took:.2f}s", flush=True)
        print(f"cores: {len(os.sched_getaffinity(0))}; uptime: {sh('uptime').strip()}")
        builds = {"layerbuild": lb.build, "buildah": bah.build}
        for tool, base in (("layerbuild", "mbusybox"), ("buildah", "localhost/mbusybox")):
            ctx = work / f"ctx-{tool}"
            ctx.mkdir(exist_ok=True)
            loop = LOOP.format(n="$n")
            (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base, loop=loop, **counts))
        lb.build(work / "ctx-layerbuild", "1")  # the bases' snapshots unpacked once
        best: dict[tuple[str, str], float] = {}
        for round_ in range(1, args.runs + 1):
            for tool, build in builds.items():
                for jobs in ("1", "2"):
                    load = os.getloadavg()[0]
                    took = timed(build, work / f"ctx-{tool}", jobs)
                    best[tool, jobs] = min(best.get((tool, jobs), took), took)
                    line = f"round {round_} {tool:<10} --jobs {jobs}: {took:6.2f}s"
                    print(f"{line} (load {load:.2f})", flush=True)
        report(best)
    finally:
        bah.close()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def report(best: dict[tuple[str, str], float]) -> None:
    print(f"\n{'best of the runs':<20}{'--jobs 1':>10}{'--jobs 2':>10}{'2/1':>8}")
    for tool in ("layerbuild", "buildah"):
        one, two = best[tool, "1"], best[tool, "2"]
        print(f"{tool:<20}{one:>9.2f}s{two:>9.2f}s{two / one:>8.2f}")
    for jobs in ("1", "2"):
        ratio = best["layerbuild", jobs] / best["buildah", jobs]
        print(f"layerbuild/buildah --jobs {jobs}: {ratio:.2f}")
    print(f"uptime: {sh('uptime').strip()}")


if __name__ == "__main__":
    main()
