"""The cost of a RUN step, layerbuild next to `buildah bud`, on the same Dockerfile in one run.

    python bench/run_bench.py [--runs 3] [--mb 200] [--driver overlay|vfs] [--dir PATH]

Two steps on top of a 5-layer image (the busybox fixture plus four small RUN layers, built by
each tool into its own store first):

- `RUN true`: changes nothing, so it measures the sandbox itself: mount, exec, diff, unmount,
  and an empty layer;
- `RUN dd if=/dev/urandom of=/big bs=1M count=MB`: writes MB of incompressible data, so it
  measures reading the upper dir back, compressing and committing the layer.

Both tools are run as a user runs them (subprocesses), with every step really executed:
layerbuild with --no-cache, buildah with --layers=false and --isolation chroot over a private
store (--root/--runroot; the overlay storage driver by default). Prints the best-of-N seconds
and layerbuild/buildah ratios (< 1: layerbuild is faster). Figures only: this never asserts.
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
BASE = """\
FROM {image}
RUN echo one > /one
RUN echo two > /two
RUN mkdir -p /three && echo three > /three/f
RUN echo four > /four
"""
STEPS = {
    "RUN true (no change)": "FROM {image}\nRUN true\n",
    "RUN writes {mb} MB": "FROM {image}\nRUN dd if=/dev/urandom of=/big bs=1M count={mb}\n",
}


def sh(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(list(map(str, args)), capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")


class Tools:
    def __init__(self, work: Path, driver: str) -> None:
        self.work = work
        self.env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.env.pop("LAYERBUILD_ROOT", None)
        self.lb = [sys.executable, "-m", "layerbuild", "--root", str(work / "lb")]
        self.bd = [
            "buildah",
            "--root",
            str(work / "bd-root"),
            "--runroot",
            str(work / "bd-run"),
            "--storage-driver",
            driver,
        ]
        self.storage = f"{driver}@{work / 'bd-root'}+{work / 'bd-run'}"

    def context(self, name: str, dockerfile: str) -> Path:
        ctx = self.work / "ctx" / name
        ctx.mkdir(parents=True, exist_ok=True)
        (ctx / "Dockerfile").write_text(dockerfile)
        return ctx

    def setup(self) -> None:
        layout = self.work / "busybox"
        sh(sys.executable, REPO / "fixtures" / "make_busybox_base.py", layout)
        sh(*self.lb, "load", layout, "-t", "busybox", env=self.env)
        sh(
            "skopeo",
            "copy",
            f"oci:{layout}:latest",
            f"containers-storage:[{self.storage}]localhost/busybox:latest",
        )
        ours = self.context("base-lb", BASE.format(image="busybox"))
        sh(*self.lb, "build", "-q", "-t", "base5", ours, env=self.env)
        theirs = self.context("base-bd", BASE.format(image="localhost/busybox:latest"))
        sh(*self.bd, "bud", "--isolation", "chroot", "-q", "-t", "base5", theirs)

    def layerbuild(self, dockerfile: str) -> float:
        ctx = self.context("step-lb", dockerfile.format(image="base5"))
        start = time.perf_counter()
        sh(*self.lb, "build", "-q", "--no-cache", "-t", "out", ctx, env=self.env)
        return time.perf_counter() - start

    def buildah(self, dockerfile: str) -> float:
        ctx = self.context("step-bd", dockerfile.format(image="localhost/base5"))
        start = time.perf_counter()
        sh(*self.bd, "bud", "--isolation", "chroot", "--layers=false", "-q", "-t", "out", ctx)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--driver", default="overlay", choices=["overlay", "vfs"])
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one)")
    args = parser.parse_args()
    for tool in ("buildah", "skopeo"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed")
    work = Path(tempfile.mkdtemp(prefix="run-bench-", dir=args.dir))
    try:
        tools = Tools(work, args.driver)
        tools.setup()
        snap = os.environ.get("LAYERBUILD_SNAPSHOTTER", "auto")
        print(f"best of {args.runs}; buildah storage driver {args.driver}; snapshotter {snap}")
        print(f"{'step':<24} {'layerbuild s':>13} {'buildah s':>10} {'ratio':>7}")
        for label, dockerfile in STEPS.items():
            text = dockerfile.replace("{mb}", str(args.mb))
            ours = min(tools.layerbuild(text) for _ in range(args.runs))
            theirs = min(tools.buildah(text) for _ in range(args.runs))
            name = label.format(mb=args.mb)
            print(f"{name:<24} {ours:>13.2f} {theirs:>10.2f} {ours / theirs:>7.2f}")
    finally:
        subprocess.run(
            [
                "buildah",
                "--root",
                str(work / "bd-root"),
                "--runroot",
                str(work / "bd-run"),
                "rm",
                "--all",
            ],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
