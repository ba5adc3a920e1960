"""COPY/ADD --chmod values: an octal mode or chmod(1) symbolic clauses, applied to a mode.

Apart from copysemantics.py because it is a small language of its own (parsed once per
instruction, pure), while copysemantics.py decides which files land where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from layerbuild.errors import BuildError

_CLAUSE = re.compile(r"([ugoa]*)((?:[-+=](?:[ugo]|[rwxXst]*))+)")
_ACTION = re.compile(r"([-+=])([ugo]|[rwxXst]*)")
_CLASS_SHIFT = {"u": 6, "g": 3, "o": 0}
_CLASS_SPECIAL = {"u": 0o4000, "g": 0o2000, "o": 0o1000}


@dataclass(frozen=True)
class Chmod:
    """A --chmod value: an octal mode, or chmod(1) symbolic clauses such as ``u+x,g-w``."""

    octal: int | None = None
    clauses: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def apply(self, mode: int, *, is_dir: bool) -> int:
        if self.octal is not None:
            return self.octal
        for who, actions in self.clauses:
            classes = who.replace("a", "ugo") or "ugo"
            for op, perms in actions:
                mode = _apply_action(mode, classes, op, perms, is_dir)
        return mode & 0o7777


def parse_chmod(spec: str) -> Chmod:
    """``755``/``0644`` (octal) or ``u+x,g-w,o=r`` (symbolic); BuildError if neither."""
    text = spec.strip()
    if text and all(c in "01234567" for c in text):
        value = int(text, 8)
        if value <= 0o7777:
            return Chmod(octal=value)
    clauses = []
    for part in text.split(","):
        m = _CLAUSE.fullmatch(part)
        if m is None:
            raise BuildError(
                f"invalid --chmod value {spec!r}",
                hint="use an octal mode such as 755 or 0644, or symbolic clauses like u+x,g-w",
            )
        actions = tuple((a.group(1), a.group(2)) for a in _ACTION.finditer(m.group(2)))
        clauses.append((m.group(1), actions))
    return Chmod(clauses=tuple(clauses))


def _apply_action(mode: int, classes: str, op: str, perms: str, is_dir: bool) -> int:
    if perms in _CLASS_SHIFT:  # copy another class's rwx, e.g. g=u
        rwx = (mode >> _CLASS_SHIFT[perms]) & 0o7
        bits = sum(rwx << _CLASS_SHIFT[c] for c in classes)
    else:
        bits = 0
        execute = "x" in perms or ("X" in perms and (is_dir or mode & 0o111))
        rwx = (4 if "r" in perms else 0) | (2 if "w" in perms else 0) | (1 if execute else 0)
        for c in classes:
            bits |= rwx << _CLASS_SHIFT[c]
            if ("s" in perms and c in "ug") or ("t" in perms and c == "o"):
                bits |= _CLASS_SPECIAL[c]
    if op == "+":
        return mode | bits
    if op == "-":
        return mode & ~bits
    cleared = sum((0o7 << _CLASS_SHIFT[c]) | _CLASS_SPECIAL[c] for c in classes)
    return (mode & ~cleared) | bits
