"""COPY source digests with the stat cache: cold, warm, one file changed, `touch -r`.

    python bench/hash_bench.py [--mb 200] [--dir PATH] [--workers N]

Generates (or reuses) pack_bench.py's mixed context in PATH (20,000 small files plus a few
large ones, about --mb megabytes), then times ``copy_changes`` + ``changes_digest`` of
``COPY . /data/`` against a stat cache in a fresh temporary store:

- cold: empty stat cache, every file read and hashed (also with a single hashing thread);
- warm: nothing changed, every file a stat-cache hit (target: digest well under 0.5 s);
- one file's bytes changed (same size): exactly that file re-hashed;
- ``touch -r``: a file's bytes changed and its mtime put back; ctime still gives it away, so
  exactly that file is re-hashed.

Prints seconds, files re-hashed and MB hashed per case. Figures only: this never asserts.
The context files must be older than the racy margin (2 s) to be cache hits; the bench waits
that long after generating them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pack_bench import generate

from layerbuild.context.hashing import changes_digest
from layerbuild.context.statcache import RACY_MARGIN_NS, StatCache
from layerbuild.engine.copysemantics import copy_changes
from layerbuild.image.changes import Change
from layerbuild.image.tree import FileTree

CHANGED = Path("pkg001") / "mod1" / "file00001.txt"
TOUCHED = Path("pkg002") / "mod2" / "file00002.txt"


def select(root: Path) -> list[Change]:
    return copy_changes(
        root,
        ["."],
        "/data/",
        workdir="/",
        tree=FileTree(),
        ignore=None,
        excludes=(),
        chown=None,
        chmod=None,
        mtime=None,
        now=0,
    )


def run_case(label: str, root: Path, cache: StatCache) -> str:
    before = cache.stats()
    start = time.perf_counter()
    changes = select(root)
    selected = time.perf_counter()
    digest, summary = changes_digest(changes, cache)
    done = time.perf_counter()
    after = cache.stats()
    rehashed = after.misses - before.misses
    racy = after.racy - before.racy
    mb = (after.bytes_hashed - before.bytes_hashed) / 1e6
    print(
        f"  {label:<24} copy_changes {selected - start:6.3f} s  changes_digest "
        f"{done - selected:6.3f} s  total {done - start:6.3f} s  "
        f"re-hashed {rehashed:5d} files ({racy} racy, {mb:5.1f} MB)  {digest.short}"
    )
    assert len(summary) == len(changes)
    return digest


def flip_bytes(path: Path) -> None:
    """Change the bytes, keep the size: only a content digest can tell."""
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "hash-bench")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    root: Path = args.dir
    if not (root / "pkg000").is_dir():
        print(f"generating {args.mb} MB context in {root} ...")
        root.mkdir(parents=True, exist_ok=True)
        generate(root, args.mb)
    # files younger than the racy margin are re-hashed on every build, by design
    time.sleep(RACY_MARGIN_NS / 1e9)
    files = sum(len(names) for _, _, names in os.walk(root))
    print(f"context: {root}, {files} files, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="hash-bench-store-") as store:
        serial = StatCache(Path(store) / "serial.db", workers=1)
        run_case("cold, one thread", root, serial)
        serial.close()
        cache = StatCache(Path(store) / "cache" / "stat.db", workers=args.workers)
        cold = run_case("cold (empty cache)", root, cache)
        warm = run_case("warm (no change)", root, cache)
        print(f"  warm digest equals cold: {warm == cold}")
        flip_bytes(root / CHANGED)
        run_case("one file's bytes changed", root, cache)
        st = os.stat(root / TOUCHED)
        flip_bytes(root / TOUCHED)
        os.utime(root / TOUCHED, ns=(st.st_atime_ns, st.st_mtime_ns))  # touch -r
        run_case("touch -r after a change", root, cache)
        time.sleep(RACY_MARGIN_NS / 1e9)
        # the two files just changed were recorded within the racy margin of their change:
        # they are re-hashed once more, after which they are trusted again
        run_case("after the racy margin", root, cache)
        run_case("warm again", root, cache)
        cache.close()


if __name__ == "__main__":
    main()
