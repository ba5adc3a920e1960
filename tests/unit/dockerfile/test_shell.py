"""Tests of dockerfile/shell.py: the golden table plus the lexer options the table cannot show."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from layerbuild.dockerfile.shell import (
    ShellLexer,
    expand_word,
    expand_words,
)
from layerbuild.errors import LayerbuildError, ShellExpansionError

TABLE = Path(__file__).resolve().parents[2] / "golden" / "shell" / "expand.txt"
_ROW = re.compile(r"^(.*) \|(?: (.*))?$")


@dataclass(frozen=True)
class Case:
    line: int
    section: str
    source: str
    expected: str
    env: dict[str, str]


def _load_table(path: Path) -> list[Case]:
    cases: list[Case] = []
    env: dict[str, str] = {}
    section = ""
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip() or text.startswith("#"):
            continue
        if text.startswith("ENV "):
            name, _, value = text[4:].partition("=")
            env[name] = value
        elif text.startswith("[") and text.endswith("]"):
            section = text[1:-1]
        else:
            match = _ROW.match(text)
            assert match, f"{path.name}:{number}: not `input | expected`: {text!r}"
            source, expected = match.group(1).strip(), (match.group(2) or "").strip()
            cases.append(Case(number, section, source, expected, dict(env)))
    return cases


CASES = _load_table(TABLE)


def test_table_is_substantial() -> None:
    assert len(CASES) >= 60
    assert {c.section for c in CASES} == {"word", "words", "backtick"}


def _run(case: Case) -> str:
    if case.section == "words":
        return ",".join(expand_words(case.source, case.env))
    escape = "`" if case.section == "backtick" else "\\"
    return expand_word(case.source, case.env, escape=escape)


@pytest.mark.parametrize("case", CASES, ids=[f"line{c.line}" for c in CASES])
def test_golden(case: Case) -> None:
    if case.expected == "error":
        with pytest.raises(ShellExpansionError):
            _run(case)
    else:
        assert _run(case) == case.expected, f"{TABLE.name}:{case.line}: {case.source}"


def test_error_names_word_and_reason() -> None:
    with pytest.raises(ShellExpansionError) as info:
        expand_word("/opt/${NAME:?set NAME to the app name}", {})
    err = info.value
    assert isinstance(err, LayerbuildError)
    assert err.word == "/opt/${NAME:?set NAME to the app name}"
    assert "NAME: set NAME to the app name" in str(err)
    assert err.hint is not None and "--build-arg NAME" in err.hint


def test_missing_brace_message() -> None:
    with pytest.raises(ShellExpansionError, match="missing '}'"):
        expand_word("${HOME:-x", {})


def test_raw_keeps_quotes_and_escapes_but_expands() -> None:
    raw = ShellLexer(raw_quotes=True, raw_escapes=True)  # how lexer.py reads a line's words
    env = {"A": "1"}
    assert raw.process("'$A' \"$A\" \\$A $A", env).result == "'$A' \"1\" \\$A 1"
    assert raw.process('"a\\"b"', env).result == '"a\\"b"'
    assert raw.process('"a\\b"', env).result == '"a\\b"'


def test_skip_process_quotes_expands_inside_single_quotes() -> None:
    # what BuildKit uses for COPY <<EOF bodies: quotes are text, variables still expand
    lexer = ShellLexer(skip_process_quotes=True)
    assert lexer.process("echo '$A' \"$A\" \\$A", {"A": "x"}).result == "echo 'x' \"x\" $A"


def test_skip_unset_leaves_references() -> None:
    lexer = ShellLexer(skip_unset=True)
    result = lexer.process("$A ${B} ${C:-d} ${E/x/y} $SET", {"SET": "s"}).result
    assert result == "$A ${B} ${C:-d} ${E/x/y} s"


def test_matched_and_unmatched_names() -> None:
    expansion = ShellLexer().process("${FOO-a} ${BAR:-b} $BAZ", {"FOO": "f", "BAR": ""})
    assert expansion.result == "f b "
    assert expansion.matched == {"FOO", "BAR"}
    assert expansion.unmatched == {"BAZ"}


def test_words_keep_blanks_from_quoted_expansions() -> None:
    assert expand_words('--opt="$V" x', {"V": "a b"}) == ["--opt=a b", "x"]


def test_replacement_is_literal() -> None:
    # a backslash or group reference in the replacement must not be read as regex syntax
    assert expand_word("${V/b/$R}", {"V": "abc", "R": "\\1"}) == "a\\1c"


def test_escape_character_is_configurable_only_outside_single_quotes() -> None:
    assert expand_word("'`$A'", {"A": "x"}, escape="`") == "`$A"
    assert expand_word("`$A$A", {"A": "x"}, escape="`") == "$Ax"
