"""The comment lines right above each instruction, as BuildKit's parser collects them
(parser.go Parse, `PrevComment`): comments accumulate until an instruction takes them; an empty
`#` line drops those before it, a blank line does not; the parser directives at the top of the
file are not comments of the first instruction."""

from __future__ import annotations

import re
from collections.abc import Iterable

from layerbuild.dockerfile.lexer import KNOWN_DIRECTIVES, RawInstruction
from layerbuild.dockerfile.source import DockerfileSource

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")


def comments_above(
    source: DockerfileSource, instructions: Iterable[RawInstruction]
) -> dict[int, tuple[str, ...]]:
    """First line of each instruction -> the comments (text after `#`, stripped) above it."""
    starts = {raw.span.start_line: raw.span.end_line for raw in instructions}
    out: dict[int, tuple[str, ...]] = {}
    pending: list[str] = []
    directives = True
    lineno = 1
    lines = source.lines
    while lineno <= len(lines):
        line = lines[lineno - 1].lstrip()
        if lineno in starts:
            out[lineno] = tuple(pending)
            pending, directives = [], False
            lineno = starts[lineno] + 1
            continue
        if directives and not _is_directive(line):
            directives = False
        if line.startswith("#") and not directives:
            text = line[1:].strip()
            pending = [*pending, text] if text else []
        lineno += 1
    return out


def _is_directive(line: str) -> bool:
    match = _DIRECTIVE.match(line)
    return match is not None and match.group(1).lower() in KNOWN_DIRECTIVES
