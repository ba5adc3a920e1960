from __future__ import annotations

from pathlib import Path

import pytest

from layerbuild.context.ignore import (
    IgnoreRules,
    compile_pattern,
    go_clean,
    go_match,
    read_ignore_lines,
)
from layerbuild.errors import BadPattern, ContextError

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "ignore"


def _table() -> list[tuple[str, list[str], str, bool]]:
    rows = []
    for table in sorted(GOLDEN.glob("*.txt")):
        for lineno, line in enumerate(table.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            patterns, path, expected = (part.strip() for part in line.split(" | "))
            assert expected in ("true", "false"), f"{table.name}:{lineno}"
            rows.append((f"{table.name}:{lineno}", patterns.split(), path, expected == "true"))
    return rows


TABLE = _table()


def test_golden_tables_are_not_empty() -> None:
    assert len(TABLE) > 100


@pytest.mark.parametrize(
    ("where", "patterns", "path", "excluded"), TABLE, ids=[r[0] for r in TABLE]
)
def test_golden(where: str, patterns: list[str], path: str, excluded: bool) -> None:
    rules = IgnoreRules.parse("\n".join(patterns))
    assert rules.matches(path) is excluded, f"{where}: {patterns} vs {path!r}"


def test_read_lines_like_ignorefile_readall() -> None:
    text = "\ufefftest1\n/test2\n/a/file/here\n\nlastfile\n# comment\n! /inverted/abs/path\n"
    assert read_ignore_lines(text) == [
        "test1",
        "test2",
        "a/file/here",
        "lastfile",
        "!inverted/abs/path",
    ]


def test_comment_only_when_hash_is_first_character() -> None:
    # Docker checks for '#' before trimming, so an indented '#' line is a pattern
    assert read_ignore_lines("# c\n  #x\n") == ["#x"]
    assert IgnoreRules.parse("  #x").matches("#x")


def test_whitespace_and_crlf_trimmed() -> None:
    rules = IgnoreRules.parse("  *.tmp  \r\nbuild/\r\n")
    assert rules.matches("a.tmp")
    assert rules.matches("build/x")
    assert not rules.matches("a.tmpx")


def test_lone_bang_is_an_error() -> None:
    with pytest.raises(ContextError, match="illegal exclusion pattern"):
        IgnoreRules.parse("!\n")


@pytest.mark.parametrize("bad", ["[", "a[", "[^bc", "[]a]", "[-]", "[x-]", "[a-b-c]", "\\"])
def test_malformed_patterns_rejected_with_source(bad: str) -> None:
    with pytest.raises(ContextError, match=r"sub/.dockerignore: invalid pattern"):
        IgnoreRules.parse(bad, source="sub/.dockerignore")


def test_go_match_checks_whole_pattern_even_after_mismatch() -> None:
    with pytest.raises(BadPattern):
        go_match("a[", "b")
    assert go_match("[\\]a]", "]")
    assert not go_match("a*", "a/b")


@pytest.mark.parametrize(
    ("pattern", "kind"),
    [
        ("*", "regexp"),
        ("**", "suffix"),
        ("**/**", "regexp"),
        ("dir/**", "prefix"),
        ("**/dir", "suffix"),
        ("**file", "suffix"),
        ("**/dir2/*", "regexp"),
        ("abc.def", "exact"),
        ("a(b)c", "exact"),
    ],
)
def test_compile_kinds_follow_patternmatcher(pattern: str, kind: str) -> None:
    assert compile_pattern(pattern, False).kind == kind


def test_prefix_quirk_double_star_without_slash() -> None:
    # 'foo**' compiles to a prefix match, so it also excludes 'foobar'
    assert IgnoreRules.parse("foo**").matches("foobar/x")
    # and '**foo' to a suffix match: 'xfoo' is excluded too
    assert IgnoreRules.parse("**foo").matches("a/xfoo")


def test_escaped_letter_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ContextError, match="unsupported escape"):
        IgnoreRules.parse("a\\d")


@pytest.mark.parametrize(
    ("path", "cleaned"),
    [
        ("", "."),
        ("./a", "a"),
        ("a/", "a"),
        ("a//b", "a/b"),
        ("//a", "/a"),
        ("/..", "/"),
        ("a/../..", ".."),
    ],
)
def test_go_clean(path: str, cleaned: str) -> None:
    assert go_clean(path) == cleaned


def test_may_include_below_without_exceptions_skips() -> None:
    rules = IgnoreRules.parse("node_modules\n")
    assert rules.matches("node_modules")
    assert not rules.may_include_below("node_modules")


def test_may_include_below_literal_exception_inside() -> None:
    rules = IgnoreRules.parse("*\n!src/app/main.py\n")
    assert rules.may_include_below("src")
    assert rules.may_include_below("src/app")
    assert not rules.may_include_below("docs")
    assert not rules.may_include_below("src/other")


def test_may_include_below_trailing_glob_stripped() -> None:
    rules = IgnoreRules.parse("vendor\n!vendor/keep/*\n")
    assert rules.may_include_below("vendor")
    assert rules.may_include_below("vendor/keep")
    assert not rules.may_include_below("vendor/drop")


def test_may_include_below_wildcard_exception_cannot_tell() -> None:
    rules = IgnoreRules.parse("*\n!**/*.go\n")
    assert rules.may_include_below("anything")
    assert not rules.matches("deep/dir/x.go")
    assert rules.matches("deep/dir/x.c")


def test_from_patterns_does_not_strip_leading_slash() -> None:
    # COPY --exclude goes straight to patternmatcher.New, which keeps '/a' (never matching)
    assert not IgnoreRules.from_patterns(["/a"]).matches("a")
    assert IgnoreRules.from_patterns(["a", "", "  "]).matches("a/b")


def test_empty_rules_match_nothing() -> None:
    rules = IgnoreRules.parse("# only a comment\n\n")
    assert rules.patterns == ()
    assert not rules.matches("anything")
