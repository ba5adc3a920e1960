"""The modules a step goes through import on their own, first: no import cycle that only
works when another module happens to be imported before (engine/runsteps.py once needed
engine/ops first)."""

from __future__ import annotations

import subprocess
import sys

_EACH_FIRST = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.startswith("layerbuild")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except ImportError as e:
        failed.append(f"{name}: {e}")
print("\\n".join(failed))
"""


# those a cycle ran through (each re-import costs most of the engine's import time)
STEP_MODULES = ("state", "stagetrees", "runsteps", "ops.run", "speedups.base", "speedups.runahead")


def test_each_step_module_imports_first() -> None:
    names = ["layerbuild.engine." + name for name in STEP_MODULES]
    out = subprocess.run(
        [sys.executable, "-c", _EACH_FIRST, *names],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == ""
