"""Chaos runs: faults injected at random, and what they leave behind.

`--mode cache` (the default): `--no-cache` builds of a Dockerfile with a non-reproducible RUN,
each killed (SIGKILL) at a random moment, each followed by a plain build that must succeed and
give a consistent image (its /sum is the md5 of its /big, its /copy is its /sum).
Prints, at the end (and every 20 kills): kills, failed rebuilds, inconsistent images, dropped
cache records (warnings), and what was left in the store once the rebuild was done (temp files
of the content store, stale build directories, half-written records, mounts under the store).

`--mode disk` (bench/chaos_disk.py): pull, build and tag on a store that runs out of space.
`--mode registry` (bench/chaos_registry.py): push and pull through a proxy that injects
registry faults. Both print faults injected, commands failed (and their exit statuses), blobs
that do not verify, tracebacks, names lost and commands that did not recover once the fault
was gone; the run fails unless the last four are 0.

    python bench/chaos.py [--mode cache|disk|registry] [--faults 200] [--work /tmp/chaos]
                          [--seed 16]

Needs root (RUN sandbox, tmpfs mounts) and busybox-static (the base image comes from
fixtures/make_busybox_base.py); disk and registry modes need Debian's docker-registry.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = """\
FROM busybox
RUN sleep 0.3 && head -c 100000 /dev/urandom > /big
RUN sleep 0.3 && md5sum /big > /sum
RUN cat /sum > /copy
"""


@dataclass
class Tally:
    kills: int = 0
    failed: int = 0
    inconsistent: int = 0
    dropped: int = 0
    leftovers: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"kills {self.kills}, failed rebuilds {self.failed}, inconsistent images "
            f"{self.inconsistent}, dropped records {self.dropped}, leftover files "
            f"{len(self.leftovers)}"
        )


def layerbuild(store: Path, *args: str | Path) -> list[str]:
    return [sys.executable, "-m", "layerbuild", "--root", str(store), *map(str, args)]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SOURCE_DATE_EPOCH",)}
    env["PYTHONPATH"] = str(REPO)
    return env


def prepare(work: Path) -> tuple[Path, Path]:
    """A store with busybox loaded, and the build context."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    layout, store, ctx = work / "busybox", work / "store", work / "ctx"
    subprocess.run(
        [sys.executable, REPO / "fixtures" / "make_busybox_base.py", layout],
        check=True,
        capture_output=True,
    )
    cmd = layerbuild(store, "load", layout, "-t", "busybox:latest")
    subprocess.run(cmd, check=True, capture_output=True, env=environment())
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    return store, ctx


def rebuild(store: Path, ctx: Path, out: Path) -> subprocess.CompletedProcess[str]:
    shutil.rmtree(out, ignore_errors=True)
    cmd = layerbuild(
        store, "build", "--progress", "plain", "-t", "c:1", "-o", f"type=local,dest={out}", ctx
    )
    return subprocess.run(cmd, capture_output=True, text=True, env=environment(), timeout=300)


def consistent(out: Path) -> bool:
    try:
        big, sums, copy = ((out / n).read_bytes() for n in ("big", "sum", "copy"))
    except OSError:
        return False
    return sums.split()[0].decode() == hashlib.md5(big).hexdigest() and copy == sums


def leftovers(store: Path) -> list[str]:
    """What a finished build should not have left: content-store temp files, build work
    directories of dead processes, half-written cache files, mounts under the store."""
    found = [str(p) for p in (store / "ingest").glob("*") if p.is_file()]
    found += [str(p) for p in (store / "blobs").rglob("*") if p.is_file() and len(p.name) != 64]
    found += [str(p) for p in (store / "tmp").glob("*")]
    found += [str(p) for p in (store / "cache").rglob(".tmp-*")]
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    found += [m for m in mounts if str(store) in m]
    return found


def run(kills: int, work: Path, seed: int) -> Tally:
    store, ctx = prepare(work)
    out = work / "out"
    t0 = time.monotonic()
    first = rebuild(store, ctx, out)
    if first.returncode != 0:
        raise SystemExit(f"the first build failed:\n{first.stdout}{first.stderr}")
    span = time.monotonic() - t0
    rng, tally = random.Random(seed), Tally()
    print(f"a build takes {span:.2f}s; killing at random in [0, {span * 1.2:.2f}s]")
    for n in range(1, kills + 1):
        cmd = layerbuild(store, "build", "--progress", "plain", "--no-cache", "-t", "c:1", ctx)
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment()
        )
        time.sleep(rng.uniform(0, span * 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        tally.kills += 1
        done = rebuild(store, ctx, out)
        tally.dropped += (done.stdout + done.stderr).count("dropped the cache record")
        if done.returncode != 0:
            tally.failed += 1
            print(f"kill {n}: rebuild failed: {done.stderr.strip().splitlines()[-1:]}")
        elif not consistent(out):
            tally.inconsistent += 1
            print(f"kill {n}: inconsistent image")
        left = leftovers(store)
        if left:
            tally.leftovers += left
            print(f"kill {n}: left {left}")
        if n % 20 == 0:
            print(f"after {n}: {tally.line()}", flush=True)
    return tally


def fault_mode(mode: str, faults: int, work: Path, seed: int) -> bool:
    sys.path.insert(0, str(REPO))  # the registry server and random images of the test support
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.monotonic()
    if mode == "disk":
        import chaos_disk

        tally = chaos_disk.run(faults, work, seed)
    else:
        import chaos_registry

        tally = chaos_registry.run(faults, work, seed)
    print(f"{mode}: {tally.line()} in {time.monotonic() - t0:.0f}s")
    return tally.clean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("cache", "disk", "registry"), default="cache")
    parser.add_argument("--faults", "--kills", dest="faults", type=int, default=200)
    parser.add_argument("--work", type=Path, default=Path("/tmp/chaos"))
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    if args.mode != "cache":
        sys.exit(0 if fault_mode(args.mode, args.faults, args.work, args.seed) else 1)
    t0 = time.monotonic()
    tally = run(args.faults, args.work, args.seed)
    print(f"{tally.line()} in {time.monotonic() - t0:.0f}s")
    sys.exit(1 if tally.failed or tally.inconsistent or tally.leftovers else 0)


if __name__ == "__main__":
    main()
