"""Instruction flags (`--name=value`), parsed once, in one place, like BuildKit's bflag.go.

Each instruction declares the flags it accepts (`FlagSpec`); `parse_flags` checks the raw words the
lexer extracted against them and reports, with the line and column, unknown flags (with the
nearest known one), missing values, bad booleans and repeated single-use flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from layerbuild.dockerfile.source import DockerfileSource, Span
from layerbuild.errors import DockerfileError


class FlagKind(Enum):
    STRING = "string"  # --name=value, at most once
    BOOL = "bool"  # --name, --name=true, --name=false
    STRINGS = "strings"  # --name=value, repeatable; values kept in order


@dataclass(frozen=True)
class FlagSpec:
    """A `--name` flag an instruction accepts, and the kind of value it takes."""

    name: str
    kind: FlagKind


def string(name: str) -> FlagSpec:
    return FlagSpec(name, FlagKind.STRING)


def boolean(name: str) -> FlagSpec:
    return FlagSpec(name, FlagKind.BOOL)


def strings(name: str) -> FlagSpec:
    return FlagSpec(name, FlagKind.STRINGS)


@dataclass(frozen=True)
class ParsedFlags:
    """The flags given on one instruction; names not given are absent."""

    values: dict[str, str | bool | tuple[str, ...]] = field(default_factory=dict, hash=False)

    def string(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if isinstance(value, str) else None

    def boolean(self, name: str) -> bool | None:
        value = self.values.get(name)
        return value if isinstance(value, bool) else None

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.values.get(name)
        return value if isinstance(value, tuple) else ()


@dataclass(frozen=True)
class _Where:
    """Where a flag was written, for the errors about it."""

    source: DockerfileSource
    span: Span
    keyword: str

    def error(self, message: str, flag_text: str, hint: str | None) -> DockerfileError:
        # the column of the flag in the instruction's first line, when it is on that line
        col = self.source.line(self.span.start_line).find(flag_text)
        return self.source.error(
            f"{self.keyword}: {message}", self.span,
            column=col + 1 if col >= 0 else None, hint=hint)


def parse_flags(
    words: Sequence[str],
    specs: Sequence[FlagSpec],
    *,
    keyword: str,
    source: DockerfileSource,
    span: Span,
) -> ParsedFlags:
    """Check `words` ("--name[=value]") against `specs`; DockerfileError on any misuse."""
    where = _Where(source, span, keyword.upper())
    by_name = {spec.name: spec for spec in specs}
    values: dict[str, str | bool | tuple[str, ...]] = {}
    for word in words:
        body = word[2:] if word.startswith("--") else word
        name, has_value, value = body.partition("=")
        spec = by_name.get(name)
        if spec is None:
            raise where.error(f"unknown flag --{name}", f"--{name}",
                              _unknown_hint(name, by_name, where.keyword))
        if spec.kind is FlagKind.BOOL:
            values[name] = _bool_value(where, name, value if has_value else None)
            continue
        if not has_value:
            raise where.error(f"flag --{name} needs a value", f"--{name}",
                              f"write it as --{name}=<value>")
        if spec.kind is FlagKind.STRINGS:
            previous = values.get(name, ())
            assert isinstance(previous, tuple)
            values[name] = (*previous, value)
        elif name in values:
            raise where.error(f"flag --{name} is given more than once", f"--{name}",
                              f"keep a single --{name}=... on this instruction")
        else:
            values[name] = value
    return ParsedFlags(values)


def _bool_value(where: _Where, name: str, value: str | None) -> bool:
    if value is None or value.lower() == "true":
        return True
    if value.lower() == "false":
        return False
    raise where.error(f"flag --{name} expects true or false, not {value!r}", f"--{name}",
                      f"write --{name} (true) or --{name}=false")


def _unknown_hint(name: str, known: dict[str, FlagSpec], keyword: str) -> str:
    if not known:
        return f"{keyword} accepts no flags"
    import difflib  # here: only an unknown name needs a suggestion

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    allowed = ", ".join(f"--{n}" for n in sorted(known))
    if close:
        return f"did you mean --{close[0]}? {keyword} accepts {allowed}"
    return f"{keyword} accepts {allowed}"
