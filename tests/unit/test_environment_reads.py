"""The LAYERBUILD_* variables are read in one place: the CLI, which turns them into
BuildOptions fields and arguments (docs/cache.md, "Speed-ups"). Deeper modules take
parameters, so that the library builds what it is asked to and no test has to set the
environment. The few exceptions are the ones named in ALLOWED."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "layerbuild"
ALLOWED = {
    "dataclasscode.py",  # LAYERBUILD_CODE_CACHE: read on import, before the CLI's code exists
    "entry.py",  # LAYERBUILD_PREFETCH: early context walkers, forked before the CLI is imported
    "registry/options.py",  # RegistryOptions.from_environ: the CLI calls it
    "store/layout.py",  # default_root: LAYERBUILD_ROOT, the store every command opens
}


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level NAME = "string" assignments."""
    found: dict[str, str] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            found.update((t.id, node.value.value) for t in node.targets if isinstance(t, ast.Name))
    return found


def _is_environ(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def _read_names(tree: ast.Module) -> list[ast.expr]:
    """What `os.environ.get(X)`, `os.environ[X]`, `X in os.environ` and `os.getenv(X)` read."""
    names: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Attribute):
            func = node.func
            if (func.attr == "get" and _is_environ(func.value)) or func.attr == "getenv":
                names.append(node.args[0])
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):
            names.append(node.slice)
        elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
            names.append(node.left)
    return names


def layerbuild_reads(source: str) -> set[str]:
    """The LAYERBUILD_* variables a module reads from os.environ."""
    tree = ast.parse(source)
    constants = _constants(tree)
    read: set[str] = set()
    for name in _read_names(tree):
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            read.add(name.value)
        elif isinstance(name, ast.Name) and name.id in constants:
            read.add(constants[name.id])
    return {v for v in read if v.startswith("LAYERBUILD_")}


def test_only_the_cli_reads_layerbuild_variables() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("cli/") or rel in ALLOWED:
            continue
        read = layerbuild_reads(path.read_text())
        if read:
            offenders[rel] = sorted(read)
    assert offenders == {}, "take these as parameters set by layerbuild/cli/ instead"


def test_the_check_finds_each_way_of_reading() -> None:
    source = (
        'import os\nNAME_ENV = "LAYERBUILD_A"\nos.environ.get(NAME_ENV)\n'
        'os.environ["LAYERBUILD_B"]\nos.getenv("LAYERBUILD_C")\n"LAYERBUILD_D" in os.environ\n'
        'os.environ.get("HOME")\n'
    )
    assert layerbuild_reads(source) == {f"LAYERBUILD_{c}" for c in "ABCD"}
    build = (PACKAGE / "cli" / "build.py").read_text()
    assert "LAYERBUILD_PREFETCH" in layerbuild_reads(build)
