"""selection_fingerprint: equal for an unchanged selection, different for any change a COPY
could see, whatever happened to mtime."""

from __future__ import annotations

import os
import time
from pathlib import Path

from layerbuild.context.fingerprint import selection_fingerprint
from layerbuild.context.select import select


def _fp(root: Path, *sources: str) -> bytes:
    groups = [(s, select(root, s, ignore=None, excludes=())) for s in sources]
    return selection_fingerprint(groups)[0]


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "a").write_text("alpha")
    (root / "d" / "sub" / "b").write_text("beta")
    return root


def test_unchanged_selection_has_the_same_fingerprint(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    assert _fp(root, "d") == _fp(root, "d")
    assert _fp(root, "d") != _fp(root, "d/sub")
    assert _fp(root, "d", "d/sub") != _fp(root, "d/sub", "d")  # order of sources counts


def test_bytes_changed_behind_a_restored_mtime_change_it(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    before = _fp(root, "d")
    path = root / "d" / "a"
    st = path.stat()
    time.sleep(0.02)  # past a timestamp tick, so ctime moves
    path.write_text("ALPHA")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns
    assert _fp(root, "d") != before


def test_hard_links_and_renames_change_it(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    before = _fp(root, "d")
    os.link(root / "d" / "a", root / "d" / "sub" / "a2")
    linked = _fp(root, "d")
    assert linked != before
    (root / "d" / "sub" / "a2").rename(root / "d" / "sub" / "a3")
    assert _fp(root, "d") not in (before, linked)


def test_newest_is_the_newest_ctime(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    files = select(root, "d", ignore=None, excludes=())
    _, newest = selection_fingerprint([("d", files)])
    assert newest == max(f.st.st_ctime_ns for f in files)
    future = time.time() + 3600
    os.utime(root / "d" / "a", (future, future))  # mtime in the future does not count
    files = select(root, "d", ignore=None, excludes=())
    _, newest = selection_fingerprint([("d", files)])
    assert newest < int(future * 1e9)
