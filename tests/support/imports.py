"""Which modules a `layerbuild` command imports, seen from inside its process.

Name: WatchedLayerbuild (the CLI with its imports recorded), Imports, forbidden.
Scope: tests/integration/test_startup_imports.py: start-up cost is paid in imports, and a
       module a command does not need is the cheapest one to never load.
Depends: the standard library and tests/support/cli.py.

The command runs under a small wrapper (`python -c WATCH FILE ARGS...`) that notes the modules
the interpreter's own start-up loaded (site, .pth files), runs `layerbuild` as `python -m` does,
and at exit writes both sets to FILE as JSON. Only the process that started writes: forked
children (context walkers, childcall) leave through os._exit or exit on their own.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.cli import Layerbuild

WATCH = """\
import atexit, json, os, runpy, sys
out, sys.argv = sys.argv[1], ["layerbuild", *sys.argv[2:]]
preloaded, pid = sorted(sys.modules), os.getpid()
def dump():
    if os.getpid() == pid:
        imported = sorted(set(sys.modules) - set(preloaded))
        with open(out, "w") as f:
            json.dump({"preloaded": preloaded, "imported": imported}, f)
atexit.register(dump)
runpy.run_module("layerbuild", run_name="__main__", alter_sys=True)
"""


@dataclass(frozen=True)
class Imports:
    """`preloaded`: in sys.modules before layerbuild started (interpreter start-up);
    `imported`: loaded from then until exit."""

    preloaded: frozenset[str]
    imported: frozenset[str]

    @classmethod
    def read(cls, path: Path) -> Imports:
        data = json.loads(path.read_text())
        return cls(frozenset(data["preloaded"]), frozenset(data["imported"]))


@dataclass(frozen=True)
class WatchedLayerbuild(Layerbuild):
    """Layerbuild whose every command records its imports in `record` (see Imports)."""

    record: Path = field(kw_only=True)

    def _argv(self, args: tuple[str | os.PathLike[str], ...]) -> list[str]:
        self.record.unlink(missing_ok=True)
        command = [sys.executable, "-c", WATCH, str(self.record), "--root", str(self.store)]
        return [*self.prefix, *command, *map(str, args)]

    def imports(self) -> Imports:
        """What the last command imported."""
        return Imports.read(self.record)


def forbidden(modules: Iterable[str], deny: Iterable[str]) -> list[str]:
    """The modules that are a deny-listed name or a submodule of one, sorted."""
    denied = tuple(deny)
    return sorted(m for m in modules if any(m == d or m.startswith(d + ".") for d in denied))
