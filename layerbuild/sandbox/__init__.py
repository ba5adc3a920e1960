"""The sandbox that executes RUN: namespaces, an overlay rootfs, and its upper dir read back.

`run(RunSpec)` runs one command (runner.py); `overlay_changes(upperdir)` turns what it changed
into layer Changes (overlaydiff.py); `Mount` and `overlay_options` describe mounts as data
(mounts.py). Only the children that spawn.py forks for runner.py make syscalls that change the
system.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from layerbuild.sandbox.mounts import Mount, overlay_options
    from layerbuild.sandbox.overlaydiff import overlay_changes
    from layerbuild.sandbox.runner import RunSpec, run

__all__ = ["Mount", "RunSpec", "overlay_changes", "overlay_options", "run"]

# loaded on first use: importing a submodule (sandbox.mounts for a RUN's cache key) must not
# pull in the runner, ctypes and all, on a rebuild whose every RUN is cached
_HOME = {
    "Mount": "mounts",
    "overlay_options": "mounts",
    "overlay_changes": "overlaydiff",
    "RunSpec": "runner",
    "run": "runner",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
