"""The shape of layerbuild/cli/: one module per command group, none importing another (the
group imports each by name, on first use), and the shared modules import no command."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from layerbuild.cli.group import _COMMANDS

CLI = Path(__file__).resolve().parents[3] / "layerbuild" / "cli"
COMMAND_MODULES = sorted({target.split(":")[0] for target in _COMMANDS.values()})
# what a command may import of the package: the group's options and the shared parsers
SHARED = {"layerbuild.cli.context", "layerbuild.cli.options", "layerbuild.cli.buildoptions"}


def _cli_imports(path: Path) -> set[str]:
    """The modules of layerbuild.cli (the package included) that `path` imports, at its top
    or inside a function."""
    package = {"layerbuild.cli"} | {f"layerbuild.cli.{p.stem}" for p in CLI.glob("*.py")}
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package itself
                base = "layerbuild.cli" + (f".{base}" if base else "")
            for alias in node.names:
                # `from layerbuild.cli import options` imports a module, `... import main` not
                submodule = f"{base}.{alias.name}"
                names.add(submodule if submodule in package else base)
    return names & package


def test_every_command_module_is_a_file_of_the_package() -> None:
    present = {f"layerbuild.cli.{p.stem}" for p in CLI.glob("*.py")}
    assert set(COMMAND_MODULES) <= present
    assert {"layerbuild.cli.build", "layerbuild.cli.run"} <= set(COMMAND_MODULES)


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_a_command_module_imports_only_shared_modules(module: str) -> None:
    imported = _cli_imports(CLI / f"{module.rsplit('.', 1)[1]}.py")
    assert imported <= SHARED, f"{module} imports {sorted(imported - SHARED)}"


@pytest.mark.parametrize(
    "name", ["context.py", "options.py", "buildoptions.py", "failure.py", "group.py"]
)
def test_shared_modules_import_no_command(name: str) -> None:
    imported = _cli_imports(CLI / name)
    assert not imported & set(COMMAND_MODULES), f"{name} imports {sorted(imported)}"
    assert "layerbuild.cli" not in imported, f"{name} imports the package (its group)"


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from layerbuild.cli import options\n"
        "def f() -> None:\n"
        "    from layerbuild.cli.cache import cache_group\n"
        "    from layerbuild import cli\n"
        "    from . import run\n"
    )
    assert _cli_imports(bad) == {
        "layerbuild.cli.options",
        "layerbuild.cli.cache",
        "layerbuild.cli.run",
        "layerbuild.cli",
    }
