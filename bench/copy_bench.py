"""COPY of a mixed context through the real build, next to sha256 and the compressors alone.

    python bench/copy_bench.py [--mb 500] [--dir PATH] [--runs 2]

Generates (or reuses) the mixed context of pack_bench.py (20,000 small files plus a few large
ones), then times `layerbuild build` of `FROM scratch` + `COPY . /data` into a fresh store, with
gzip and with zstd, as a user runs it (a subprocess: start-up, context walk, tar, compression,
hashing, store commit). Prints MB/s of context bytes and the ratio to the compressor's own speed
on the same bytes. Figures only: this never asserts. Target (issue 2): ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import zstandard
from isal import isal_zlib
from pack_bench import changes_for, compress_all, generate

from layerbuild.image.tarwriter import write_tar


def rate(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6


def best_of(runs: int, fn: object) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def build_seconds(context: Path, compression: str, runs: int) -> float:
    (context / "Dockerfile").write_text("FROM scratch\nCOPY . /data\n")

    def one() -> None:
        with tempfile.TemporaryDirectory(prefix="copy-bench-store-") as store:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "layerbuild",
                    "--root",
                    store,
                    "build",
                    "-q",
                    "--compression",
                    compression,
                    str(context),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )

    return best_of(runs, one)


def compile_package() -> None:
    """Byte-compile layerbuild first, as `pip install` does: with PYTHONDONTWRITEBYTECODE set
    (as on CI machines) every timed run would otherwise recompile the package from source."""
    import layerbuild

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(layerbuild.__file__).parent)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def run(context: Path, runs: int) -> None:
    compile_package()
    tar = io.BytesIO()
    write_tar(changes_for(context), tar)
    data = tar.getvalue()
    n = len(data)
    print(f"context: {n / 1e6:.0f} MB as a tar; best of {runs} runs")
    sha = rate(n, best_of(runs, lambda: hashlib.sha256(data).digest()))
    gz = rate(
        n,
        best_of(
            runs,
            lambda: compress_all(data, lambda: isal_zlib.compressobj(2, isal_zlib.DEFLATED, -15)),
        ),
    )
    zs = rate(
        n,
        best_of(
            runs,
            lambda: compress_all(data, lambda: zstandard.ZstdCompressor(level=3).compressobj()),
        ),
    )
    print(f"  {'sha256 alone':<34} {sha:8.0f} MB/s")
    print(f"  {'isal gzip alone (level 2)':<34} {gz:8.0f} MB/s")
    print(f"  {'zstd alone (level 3)':<34} {zs:8.0f} MB/s")
    for name, alone in (("gzip", gz), ("zstd", zs)):
        build = rate(n, build_seconds(context, name, runs))
        print(
            f"  {'layerbuild build COPY (' + name + ')':<34} {build:8.0f} MB/s"
            f"   = {build / alone:.2f} of the compressor alone"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=500)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    if args.dir is not None:
        if not args.dir.exists() or not any(args.dir.iterdir()):
            args.dir.mkdir(parents=True, exist_ok=True)
            generate(args.dir, args.mb)
        run(args.dir, args.runs)
        return
    with tempfile.TemporaryDirectory(prefix="copy-bench-") as tmp:
        generate(Path(tmp), args.mb)
        run(Path(tmp), args.runs)


if __name__ == "__main__":
    main()
