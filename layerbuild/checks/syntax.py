"""The rules about how the file is written, checked on every instruction as lexed (BuildKit
runs them while parsing, for all stages): keyword and stage-name casing, empty continuation
lines, MAINTAINER, reserved stage names."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from layerbuild.checks.rules import Finding
from layerbuild.dockerfile.lexer import RawInstruction, split_whitespace
from layerbuild.dockerfile.source import Span

RESERVED_STAGE_NAMES = ("context", "scratch")


def syntax_findings(raws: Sequence[RawInstruction]) -> Iterator[Finding]:
    for raw in raws:
        start = raw.span.start_line
        if raw.empty_continuation is not None:
            line = raw.empty_continuation
            yield Finding("NoEmptyContinuation", "Empty continuation line", Span(line, line), None)
        keyword = raw.keyword.lower()
        if keyword == "maintainer":
            yield Finding("MaintainerDeprecated",
                          "Maintainer instruction is deprecated in favor of using label",
                          raw.span, start)
        elif keyword == "from":
            yield from _from_findings(raw)
    yield from _casing(raws)


def _from_findings(raw: RawInstruction) -> Iterator[Finding]:
    args = split_whitespace(raw.args)
    if len(args) != 3:
        return
    start = raw.span.start_line
    name, as_word, keyword = args[2], args[1], raw.keyword
    if name != name.lower():
        yield Finding("StageNameCasing", f"Stage name '{name}' should be lowercase", raw.span,
                      start)
    # a FROM of mixed casing is ConsistentInstructionCasing's to report, not this rule's
    if keyword == keyword.lower() and as_word != as_word.lower() or (
        keyword == keyword.upper() and keyword != keyword.lower() and as_word != as_word.upper()
    ):
        yield Finding("FromAsCasing", f"'{as_word}' and '{keyword}' keywords' casing do not match",
                      raw.span, start)
    if name.lower() in RESERVED_STAGE_NAMES:
        yield Finding("ReservedStageName", "Stage name should not use the same name as reserved "
                      f'stage "{name.lower()}"', raw.span, None)


def _casing(raws: Sequence[RawInstruction]) -> Iterator[Finding]:
    """ConsistentInstructionCasing over the instructions of the stages (global ARGs do not
    count, as in BuildKit, whose count walks the stages)."""
    first_from = next((i for i, r in enumerate(raws) if r.keyword.lower() == "from"), len(raws))
    staged = raws[first_from:]
    lower = sum(1 for r in staged if r.keyword == r.keyword.lower())
    upper = sum(1 for r in staged if r.keyword == r.keyword.upper() != r.keyword.lower())
    majority_lower = lower > upper
    for raw in staged:
        word = raw.keyword
        if majority_lower and word != word.lower():
            wanted = "lowercase"
        elif not majority_lower and word != word.upper():
            wanted = "uppercase"
        else:
            continue
        yield Finding("ConsistentInstructionCasing",
                      f"Command '{word}' should match the case of the command majority ({wanted})",
                      raw.span, None)
