"""The store owns the paths under its root: no module outside store/ spells one of its
directories or files (it asks `Store` for the path instead), so the layout can change in one
place."""

from __future__ import annotations

import ast
from pathlib import Path

from layerbuild.store.layout import PRIVATE_DIRS, Store

PACKAGE = Path(__file__).resolve().parents[3] / "layerbuild"
# files the store keeps under cache/; "blobs" is left out: export/ writes OCI layouts of its own
STORE_FILES = {"stat.db", "blocks.db"}


def _spelled_paths(tree: ast.AST) -> list[str]:
    """`x / "cache"` (a directory of the store's root), `store.root / ...`, or a store file's
    name anywhere."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in STORE_FILES:
            found.append(f"line {node.lineno}: {node.value!r}")
        if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)):
            continue
        right, left = node.right, node.left
        if isinstance(right, ast.Constant) and right.value in PRIVATE_DIRS:
            found.append(f"line {node.lineno}: / {right.value!r}")
        elif isinstance(left, ast.Attribute) and left.attr == "root" and _names_store(left.value):
            found.append(f"line {node.lineno}: store.root / ...")
    return sorted(found)


def _names_store(node: ast.expr) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name == "store"


def test_no_module_outside_store_spells_a_path_of_the_store() -> None:
    spelled = {
        str(path.relative_to(PACKAGE)): found
        for path in sorted(PACKAGE.rglob("*.py"))
        if "store" not in path.relative_to(PACKAGE).parts[:1]
        and (found := _spelled_paths(ast.parse(path.read_text(), str(path))))
    }
    assert spelled == {}, "ask layerbuild.store.layout.Store for these paths"


def test_the_checker_finds_what_it_looks_for() -> None:
    tree = ast.parse(
        'a = store.root / "x"\nb = root / "cache" / "keys"\nc = self.store.root\nd = "blocks.db"\n'
    )
    assert _spelled_paths(tree) == [
        "line 1: store.root / ...",
        "line 2: / 'cache'",
        "line 4: 'blocks.db'",
    ]


def test_the_named_paths_lie_in_the_store(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    named = [store.stat_db, store.blocks_db, store.cache_mounts_dir, store.sources_dir]
    assert all(p.is_relative_to(store.root) for p in [*named, store.tmp_dir])
    assert store.tmp_dir.is_dir() and store.sources_dir.is_dir()
