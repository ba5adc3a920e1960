"""A RUN after a COPY gets that layer as an overlay lower written from the COPY's Changes
(store/materialize.py): it sees exactly the copied files, and after a one-file change only that
file is written anew, the rest being hard links into the previous build's snapshot."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, make_context

pytestmark = [pytest.mark.root, pytest.mark.overlay]

DOCKERFILE = """\
FROM busybox
COPY src/ /app/
RUN cat /app/a.txt /app/sub/b.txt > /out && ls -ln /app/sub/c.sh > /ls && /app/sub/c.sh
"""


def _snapshot_of(store: Path, rel: str) -> dict[str, os.stat_result]:
    """Every layer snapshot holding `rel`, by its directory name."""
    layers = store / "snapshots" / "layers"
    out = {}
    for snap in layers.iterdir():
        path = snap / rel
        if not snap.name.startswith("tmp-") and path.exists():
            out[snap.name] = os.lstat(path)
    return out


def test_run_sees_the_copy_and_shares_unchanged_files(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": DOCKERFILE,
            "src/a.txt": "one\n",
            "src/sub/b.txt": "bee\n",
            "src/sub/c.sh": "#!/bin/sh\necho ran\n",
        },
    )
    (ctx / "src" / "sub" / "c.sh").chmod(0o750)
    lb.build(ctx, "-t", "s:1")
    first = lb.ok("run", "s:1", "cat", "/out").stdout
    assert first == "one\nbee\n"
    assert "-rwxr-x---" in lb.ok("run", "s:1", "cat", "/ls").stdout
    (ctx / "src" / "a.txt").write_text("two\n")
    lb.build(ctx, "-t", "s:2")
    assert lb.ok("run", "s:2", "cat", "/out").stdout == "two\nbee\n"
    bees = _snapshot_of(lb.store, "app/sub/b.txt")
    assert len(bees) == 2 and len({st.st_ino for st in bees.values()}) == 1, bees
    ays = _snapshot_of(lb.store, "app/a.txt")
    assert len({st.st_ino for st in ays.values()}) == 2


def test_first_build_of_a_big_context_writes_the_lower_while_packing(
    lb: Layerbuild, tmp_path: Path
) -> None:
    """Over 8 MB of unseen files are packed before the key is known; the RUN's lower is
    written meanwhile from the same reads and must hold exactly those bytes."""
    big = os.urandom(9 << 20)
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\nCOPY . /ctx/\nRUN sha256sum /ctx/big /ctx/s/t > /sums\n",
            "big": big,
            "s/t": "small\n",
        },
    )
    lb.build(ctx, "-t", "b:1")
    sums = lb.ok("run", "b:1", "cat", "/sums").stdout.split()
    assert sums[0] == hashlib.sha256(big).hexdigest()
    assert sums[2] == hashlib.sha256(b"small\n").hexdigest()
    assert not list((lb.store / "snapshots" / "layers").glob("tmp-*"))  # nothing left behind
