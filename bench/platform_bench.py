"""A two-platform build (linux/amd64,linux/arm64), platforms one after another and at once,
beside buildah's, same run.

    python bench/platform_bench.py [--runs 2] [--seconds 2] [--work DIR] [--tools ...]

The Dockerfile: the multi-platform busybox base (fixtures/make_multiplatform_busybox.py) and
one CPU-bound RUN, a shell loop of about --seconds on each platform. arm64 runs under QEMU here,
some 30 times slower than amd64 natively, so the loop's iteration count is calibrated for each
architecture first (`layerbuild run --platform P`) and the RUN picks its own by $TARGETARCH:
two platforms of equal work, the case where building them at once can save the most (about
half, on two free cores). Every step runs (--no-cache).

The references, in the same run: `buildah build --platform linux/amd64,linux/arm64 --manifest`
(chroot isolation, its own storage under --work, the base loaded with skopeo per architecture
and gathered into a manifest list), with its own `--jobs 1` and `--jobs 2` (buildah builds the
platforms at once within --jobs too); and BuildKit through Debian's dockerd (20.10, started
here on a socket of its own, no bridge), which builds arm64 here but not two platforms in one
build (it refuses `--platform linux/amd64,linux/arm64`; no buildx): its figures are two
single-platform builds (`FROM mbusybox-$TARGETARCH`, the base loaded per architecture), one
after another for "--jobs 1" and from two clients at once for "--jobs 2", with no index (a
build that fails as 20.10 now and then does here is timed again, and said so).
All run RUN steps of arm64 through the same QEMU binfmt_misc handler.

The rounds alternate the tools and --jobs; the best of --runs of each counts, with the load
average before each build beside it (2 cores: the --jobs 2 figures are only as good as the
second core is free). layerbuild runs with --network none, buildah's chroot isolation with the
host's network: neither sets up a network per RUN. Figures only: this never asserts.
Needs root, buildah, skopeo, docker.io and qemu-user-static registered (`layerbuild binfmt`).
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
DOCKER = "/usr/bin/docker"  # Debian's client, the one that goes with its dockerd
DOCKERFILE = """\
{preamble}FROM {base}
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
        """The loop's seconds in a sandbox of `platform`, by its clock (/proc/uptime, in
        hundredths): the sandbox's start, which varies by tenths, left out."""
        read = "read t _ < /proc/uptime; echo $t"
        script = f"{read}; {LOOP.format(n=n)}; {read}"
        run = [*self.cmd, "run", "--platform", platform, "mbusybox", "sh", "-c", script]
        start, end = map(float, sh(*run, env=self.env).split())
        return end - start

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


class Flaky(Exception):
    """Debian's dockerd 20.10 now and then fails a RUN here ("exec: /bin/sh: no such file or
    directory", see bench/scale_bench.py): that build is timed again, and said so."""


ATTEMPTS = 3


class BuildKit:
    def __init__(self, work: Path, layout: Path) -> None:
        state = work / "dockerd"
        state.mkdir(exist_ok=True)
        sock = state / "docker.sock"
        argv = ["dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none"]
        argv += ["--data-root", str(state / "root"), "--exec-root", str(state / "exec")]
        argv += ["-H", f"unix://{sock}", "--pidfile", str(state / "pid")]
        with open(state / "log", "wb") as log:
            self.daemon = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{sock}", "DOCKER_BUILDKIT": "1"}
        for _ in range(100):
            up = subprocess.run([DOCKER, "version"], capture_output=True, env=self.env)
            if up.returncode == 0:
                break
            time.sleep(0.2)
        for arch in ("amd64", "arm64"):  # a docker-archive holds one image per name
            archive = work / f"mbusybox-{arch}.tar"
            sh("skopeo", "--override-arch", arch, "copy", "-q", f"oci:{layout}:latest",
               f"docker-archive:{archive}:mbusybox-{arch}:latest")  # fmt: skip
            sh(DOCKER, "load", "-i", archive, env=self.env)

    def build(self, ctx: Path, jobs: str) -> None:
        builds = [
            # 20.10 leaves TARGETARCH empty before FROM
            [DOCKER, "build", "-q", "--no-cache", "--network=none", "--platform", f"linux/{a}",
             "--build-arg", f"TARGETARCH={a}", "-t", f"bench:{a}", str(ctx)]
            for a in ("amd64", "arm64")
        ]  # fmt: skip
        at_once = 2 if jobs == "2" else 1
        for first in range(0, len(builds), at_once):
            group = builds[first : first + at_once]
            procs = [subprocess.Popen(a, env=self.env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE) for a in group]  # fmt: skip
            for proc in procs:
                _, err = proc.communicate()
                if proc.returncode != 0:
                    raise Flaky(err.decode().strip().splitlines()[-1])

    def close(self) -> None:
        self.daemon.terminate()
        self.daemon.wait(timeout=60)


def calibrate(lb: Layerbuild, platform: str, seconds: float) -> tuple[int, float]:
    """The loop count that takes about `seconds` on `platform`, and the seconds it took."""
    n = 10_000
    while (took := lb.loop_seconds(platform, n)) < 1.0:
        n *= 3
    for _ in range(2):  # once more from nearer
        n = int(n * seconds / took)
        took = lb.loop_seconds(platform, n)
    return n, took


BASES = {  # tool: (lines before FROM, the base)
    "layerbuild": ("", "mbusybox"),
    "buildah": ("", "localhost/mbusybox"),
    "buildkit": ("ARG TARGETARCH\n", "mbusybox-$TARGETARCH"),
}
Tool = Layerbuild | Buildah | BuildKit


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--tools", default="layerbuild,buildah,buildkit")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="platform-bench-"))
    layout = work / "mbusybox"
    sh(sys.executable, REPO / "fixtures" / "make_multiplatform_busybox.py", layout)
    lb = Layerbuild(work, layout)
    tools: dict[str, Tool] = {"layerbuild": lb}
    try:
        for name in args.tools.split(","):
            if name == "buildah":
                tools[name] = Buildah(work, layout)
            elif name == "buildkit":
                tools[name] = BuildKit(work, layout)
            elif name != "layerbuild":
                sys.exit(f"unknown tool {name!r}: layerbuild, buildah or buildkit")
        run(lb, tools, work, args)
    finally:
        for tool in tools.values():
            if not isinstance(tool, Layerbuild):
                tool.close()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def run(lb: Layerbuild, tools: dict[str, Tool], work: Path, args: argparse.Namespace) -> None:
    counts = {}
    for platform in ("linux/amd64", "linux/arm64"):
        n, took = calibrate(lb, platform, args.seconds)
        counts[platform.split("/")[1]] = n
        print(f"{platform}: a loop of {n} iterations, {took:.2f}s", flush=True)
    print(f"cores: {len(os.sched_getaffinity(0))}; uptime: {sh('uptime').strip()}")
    for name in tools:
        (ctx := work / f"ctx-{name}").mkdir(exist_ok=True)
        preamble, base = BASES[name]
        text = DOCKERFILE.format(preamble=preamble, base=base, loop=LOOP.format(n="$n"), **counts)
        (ctx / "Dockerfile").write_text(text)
    lb.build(work / "ctx-layerbuild", "1")  # the bases' snapshots unpacked once
    best: dict[tuple[str, str], float] = {}
    for round_ in range(1, args.runs + 1):
        for name, tool in tools.items():
            for jobs in ("1", "2"):
                load = os.getloadavg()[0]
                took = timed_again(tool.build, work / f"ctx-{name}", jobs)
                best[name, jobs] = min(best.get((name, jobs), took), took)
                line = f"round {round_} {name:<10} --jobs {jobs}: {took:6.2f}s"
                print(f"{line} (load {load:.2f})", flush=True)
    report(best, list(tools))


def timed_again(build: Callable[[Path, str], None], ctx: Path, jobs: str) -> float:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return timed(build, ctx, jobs)
        except Flaky as e:
            print(f"  failed ({e}); attempt {attempt} of {ATTEMPTS}", flush=True)
    sys.exit(f"{ctx.name}: failed {ATTEMPTS} times")


def report(best: dict[tuple[str, str], float], tools: list[str]) -> None:
    print(f"\n{'best of the runs':<20}{'--jobs 1':>10}{'--jobs 2':>10}{'2/1':>8}")
    for tool in tools:
        one, two = best[tool, "1"], best[tool, "2"]
        print(f"{tool:<20}{one:>9.2f}s{two:>9.2f}s{two / one:>8.2f}")
    for other in tools[1:]:
        for jobs in ("1", "2"):
            ratio = best["layerbuild", jobs] / best[other, jobs]
            print(f"layerbuild/{other} --jobs {jobs}: {ratio:.2f}")
    if "buildkit" in tools:
        print("(buildkit: two single-platform builds, one after another / at once; no index)")
    print(f"uptime: {sh('uptime').strip()}")


if __name__ == "__main__":
    main()
