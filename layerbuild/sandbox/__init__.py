"""The sandbox that executes RUN: namespaces, an overlay rootfs, and its upper dir read back.

`run(RunSpec)` runs one command (runner.py); `overlay_changes(upperdir)` turns what it changed
into layer Changes (overlaydiff.py); `Mount` and `overlay_options` describe mounts as data
(mounts.py). Only the children forked by runner.py make syscalls that change the system.
"""

from layerbuild.sandbox.errors import SandboxError
from layerbuild.sandbox.mounts import Mount, overlay_options
from layerbuild.sandbox.overlaydiff import overlay_changes
from layerbuild.sandbox.runner import RunSpec, run

__all__ = ["Mount", "RunSpec", "SandboxError", "overlay_changes", "overlay_options", "run"]
