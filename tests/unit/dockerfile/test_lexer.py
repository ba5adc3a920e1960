from __future__ import annotations

import pytest

from layerbuild.dockerfile.instructions import Heredoc
from layerbuild.dockerfile.lexer import (
    NotStringArray,
    extract_flags,
    heredoc_marker,
    lex,
    parse_json_array,
    split_words,
)
from layerbuild.dockerfile.source import DockerfileSource, Span
from layerbuild.errors import DockerfileError


def _lex(text: str):  # type: ignore[no-untyped-def]
    return lex(DockerfileSource("Dockerfile", text))


def test_spans_and_keywords() -> None:
    result = _lex("FROM a\n\nrun echo \\\n  b\n")
    assert [(r.keyword, r.args, r.span) for r in result.instructions] == [
        ("FROM", "a", Span(1, 1)),
        ("run", "echo   b", Span(3, 4)),
    ]


def test_directives_stop_at_first_other_line() -> None:
    result = _lex("# syntax=x/y\n# escape=`\n# check=error=true\n# comment\n# escape=\\\nFROM a\n")
    assert result.directives == {"syntax": "x/y", "escape": "`", "check": "error=true"}
    assert result.escape == "`"


def test_directive_after_instruction_is_a_comment() -> None:
    result = _lex("FROM a\n# escape=`\nRUN x \\\n y\n")
    assert result.directives == {}
    assert result.instructions[1].args == "x  y"


def test_repeated_directive_is_an_error() -> None:
    with pytest.raises(DockerfileError, match="only one syntax") as info:
        _lex("# syntax=a\n# syntax=b\nFROM a\n")
    assert info.value.line == 2


def test_backtick_escape_continues_lines_and_backslash_does_not() -> None:
    result = _lex("# escape=`\nFROM a\nRUN dir c:\\ `\n  /w\n")
    assert result.instructions[1].args == "dir c:\\   /w"


def test_comment_and_blank_lines_inside_continuation_are_skipped() -> None:
    result = _lex("FROM a\nRUN a \\\n# c\n\n   # d\n b\n")
    assert result.instructions[1].args == "a  b"
    assert result.instructions[1].span == Span(2, 6)


def test_hash_mid_line_is_text() -> None:
    assert _lex("FROM a # not a comment\n").instructions[0].args == "a # not a comment"


def test_heredoc_body_is_not_lexed_as_instructions() -> None:
    result = _lex("FROM a\nRUN <<EOF\nFROM b \\\n# x\nEOF\nRUN y\n")
    run = result.instructions[1]
    assert run.heredocs == (Heredoc("EOF", "FROM b \\\n# x\n", True, False),)
    assert run.span == Span(2, 5)
    assert [r.args for r in result.instructions] == ["a", "<<EOF", "y"]


def test_dash_heredoc_strips_tabs_and_allows_indented_terminator() -> None:
    run = _lex("FROM a\nRUN <<-X\n\t\tone\n  two\n\tX\n").instructions[1]
    assert run.heredocs[0].content == "one\n  two\n"
    assert run.heredocs[0].chomp


def test_heredoc_terminator_without_dash_must_be_exact() -> None:
    with pytest.raises(DockerfileError, match="unterminated heredoc <<X"):
        _lex("FROM a\nRUN <<X\n\tX\n")


def test_heredocs_only_for_run_copy_add_shell_form() -> None:
    result = _lex('FROM a\nCMD <<EOF\nRUN ["<<EOF"]\nEOF\n')
    assert [r.heredocs for r in result.instructions] == [(), (), (), ()]
    assert [r.keyword for r in result.instructions] == ["FROM", "CMD", "RUN", "EOF"]


def test_heredoc_markers() -> None:
    assert heredoc_marker("<<EOF") == Heredoc("EOF", "", True, False)
    assert heredoc_marker("<<-'EOF'") == Heredoc("EOF", "", False, True)
    assert heredoc_marker('<<"EOF"') == Heredoc("EOF", "", False, False)
    assert heredoc_marker("2<<EOF") == Heredoc("EOF", "", True, False)
    for word in ("a<<EOF", "<<", "<<a<b", '"<<EOF"'):
        assert heredoc_marker(word) is None


def test_extract_flags() -> None:
    assert extract_flags('--a=1 --b="x y" --c rest --d=2') == (
        "rest --d=2", ["--a=1", "--b=x y", "--c"])
    assert extract_flags("-- --notflag x") == ("--notflag x", [])
    assert extract_flags("--only") == ("", ["--only"])


def test_parse_json_array() -> None:
    assert parse_json_array(' ["a", "b c"]') == ["a", "b c"]
    assert parse_json_array("[not json]") is None
    assert parse_json_array("echo [x]") is None
    assert parse_json_array('{"a": 1}') is None
    with pytest.raises(NotStringArray):
        parse_json_array('["a", 1]')


def test_split_words_keeps_quotes_and_escapes() -> None:
    assert split_words('a=1 b="x y" c=\'$z\' d=e\\ f g=""', "\\") == [
        "a=1", 'b="x y"', "c='$z'", "d=e\\ f", 'g=""']
    assert split_words("a=x`\"y b", "`") == ['a=x`"y', "b"]
