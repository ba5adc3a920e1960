"""Rootless, a one-file change also gives the COPY layer a delta snapshot (of the rootless
flavour, over the previous rootless one), and the RUN over it sees what the same builds see
as root.

The builds run in a forked child that drops to `lbtest` and enters its user namespace, as the
`layerbuild` command does (conftest.py `as_user`); what they need is imported first.
"""

from __future__ import annotations

import concurrent.futures.thread  # noqa: F401  (imported lazily by ThreadPoolExecutor)
import encodings.ascii
import encodings.idna
import encodings.latin_1  # noqa: F401
import os
import pwd
import shutil
from pathlib import Path

import pytest

import layerbuild.store.deltasnap  # noqa: F401  (imported lazily by the snapshot writer)
from layerbuild.engine.executor import build
from layerbuild.engine.options import BuildOptions
from layerbuild.export.load import load
from layerbuild.export.oci_layout import write_oci_layout
from layerbuild.store.layers import remove_tree
from layerbuild.store.layout import Store
from tests.integration.sandbox.conftest import as_user, chown_tree, user_owned_dir
from tests.support.cli import unpack

pytestmark = [pytest.mark.root, pytest.mark.rootless, pytest.mark.overlay]

LISTING = (
    "cd /app && find . -mindepth 1 | sort | while read f; do stat -c '%n %A %u %g %s %Y' \"$f\";"
    ' if [ -f "$f" ] && [ ! -L "$f" ]; then md5sum "$f"; fi; done > /list'
)
MTIME = 1_700_000_000
DOCKERFILE = f"FROM busybox\nCOPY --chown=1000:1000 src/ /app/\nRUN {LISTING}\n"


def _builds(store_root: Path, context: Path, base: Path, out: Path) -> list[str]:
    """Two builds with one file changed in between; the snapshot names after the second."""
    store = Store.open(store_root)
    for _, desc in load(store, base):
        store.refs.set("busybox:latest", desc)
    build(store, BuildOptions(context=context, tags=("t:1",), registry=None, network="none"))
    changed = context / "src" / "a" / "f3.txt"
    changed.write_text("changed\n")
    os.utime(changed, (MTIME + 60, MTIME + 60))
    result = build(
        store, BuildOptions(context=context, tags=("t:2",), registry=None, network="none")
    )
    write_oci_layout(store, result.descriptor, out, ["t:2"])
    return sorted(os.listdir(store_root / "snapshots" / "layers"))


def _context(root: Path) -> Path:
    ctx = root / "ctx"
    for i in range(30):
        path = ctx / "src" / ("a" if i % 2 else "b") / f"f{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"file {i}\n")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    for path in sorted(ctx.rglob("*"), reverse=True):  # both contexts: the same mtimes
        os.utime(path, (MTIME, MTIME))
    return ctx


def test_rootless_delta_snapshot_matches_the_root_build(
    lbtest_user: pwd.struct_passwd, busybox_layout: Path, tmp_path: Path
) -> None:
    home = user_owned_dir(lbtest_user, "lbtest-delta-")
    try:
        ctx = _context(home)
        shutil.copytree(busybox_layout, home / "busybox")
        chown_tree(home, lbtest_user)
        out = home / "oci"
        names = as_user(lbtest_user, lambda: _builds(home / "store", ctx, home / "busybox", out))
        deltas = [n for n in names if "-on-" in n]
        assert len(deltas) == 1 and deltas[0].endswith("-userns"), names

        root_ctx = _context(tmp_path)
        root_names = _builds(tmp_path / "store", root_ctx, busybox_layout, tmp_path / "oci")
        assert [n for n in root_names if "-on-" in n and not n.endswith("-userns")]
        rootless = (unpack(out, "2") / "list").read_text()
        assert rootless == (unpack(tmp_path / "oci", "2") / "list").read_text()
        assert "./a/f3.txt -rw-r--r-- 1000 1000 8" in rootless
    finally:
        remove_tree(home)
