"""After a small change, the COPY layer's overlay lower is a delta stacked above the previous
build's snapshot (store/deltaplan.py): the RUN after it sees exactly what a cold build in a
fresh store sees, for a changed, an added and a removed file and a directory replaced by a
file; gc keeps a delta's base for as long as the delta is needed (and the layers' mtimes
records for as long as their snapshots), and fsck finds it sound."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from layerbuild.store import snapnames
from tests.support.cli import Layerbuild, make_context

pytestmark = [pytest.mark.root, pytest.mark.overlay]

# everything an overlay lower shows of each entry but /app's own mtime (the build's time)
LISTING = (
    "cd /app && find . -mindepth 1 | sort | while read f; do stat -c '%n %A %u %g %s %Y' \"$f\";"
    ' if [ -f "$f" ] && [ ! -L "$f" ]; then md5sum "$f"; fi; done > /list'
)
DOCKERFILE = f"FROM busybox\nCOPY src/ /app/\nRUN {LISTING}\n"


def _context(tmp_path: Path) -> Path:
    files: dict[str, str | bytes] = {"Dockerfile": DOCKERFILE}
    for i in range(30):
        files[f"src/{'a' if i % 2 else 'b/c'}/f{i}.txt"] = f"file {i}\n"
    files["src/gone/x"] = "under a directory\n"
    return make_context(tmp_path, files)


def _deltas(store: Path) -> list[str]:
    return [p.name for p in (store / "snapshots" / "layers").iterdir() if "-on-" in p.name]


def _listing(lb: Layerbuild, tag: str) -> str:
    return lb.ok("run", tag, "cat", "/list").stdout


def test_run_over_a_delta_sees_what_a_cold_build_sees(
    lb: Layerbuild, new_store: Callable[[str], Layerbuild], tmp_path: Path
) -> None:
    ctx = _context(tmp_path)
    src = ctx / "src"
    lb.build(ctx, "-t", "d:0")

    def replace_dir(src: Path) -> None:
        (src / "gone" / "x").unlink()
        (src / "gone").rmdir()
        (src / "gone").write_text("now a file\n")

    steps: list[tuple[str, Callable[[Path], object], bool]] = [
        ("changed", lambda s: (s / "a" / "f3.txt").write_text("changed\n"), True),
        ("added", lambda s: (s / "b" / "c" / "new.txt").write_text("new\n"), True),
        ("dir-to-file", replace_dir, True),
        ("removed", lambda s: (s / "a" / "f5.txt").unlink(), False),
    ]
    for n, (what, change, delta) in enumerate(steps, 1):
        before = set(_deltas(lb.store))
        change(src)
        lb.build(ctx, "-t", f"d:{n}")
        made = set(_deltas(lb.store)) - before
        assert len(made) == (1 if delta else 0), (what, made)
        cold = new_store(f"cold-{n}")
        cold.build(ctx, "-t", "cold:1")
        assert _listing(lb, f"d:{n}") == _listing(cold, "cold:1"), what
    assert "./gone -rw-r--r--" in _listing(lb, "d:3")


def test_gc_keeps_a_deltas_base_and_fsck_finds_the_store_sound(
    lb: Layerbuild, tmp_path: Path
) -> None:
    ctx = _context(tmp_path)
    lb.build(ctx, "-t", "d:1")
    (ctx / "src" / "a" / "f1.txt").write_text("changed\n")
    lb.build(ctx, "-t", "d:2")
    layers = lb.store / "snapshots" / "layers"
    [delta] = _deltas(lb.store)

    lb.ok("rmi", "d:1")
    lb.ok("cache", "prune", "--all")  # d:1's COPY layer is needed by nothing but the delta
    names = [p.name for p in layers.iterdir()]
    assert delta in names
    parsed = snapnames.parse(delta)
    assert parsed is not None and parsed.base is not None
    assert snapnames.chain(snapnames.index(names), parsed.base, rootless=False)
    assert lb.ok("run", "d:2", "cat", "/app/a/f1.txt").stdout == "changed\n"
    assert lb.ok("run", "d:2", "cat", "/app/a/f3.txt").stdout == "file 3\n"
    assert lb("fsck").returncode == 0
    mtimes = lb.store / "cache" / "mtimes"  # store/layermtimes.py: for the next delta
    assert parsed.hex in {p.name for p in mtimes.iterdir()}

    lb.ok("rmi", "d:2")
    lb.ok("rmi", "busybox:latest")
    lb.ok("cache", "prune", "--all")
    assert [p.name for p in layers.iterdir()] == []
    assert [p.name for p in mtimes.iterdir()] == []
