from __future__ import annotations

import pytest

from layerbuild.dockerfile.instructions import Heredoc
from layerbuild.dockerfile.lexer import (
    extract_flags,
    heredoc_marker,
    lex,
    parse_json_array,
    split_words,
)
from layerbuild.dockerfile.parser import parse_dockerfile
from layerbuild.dockerfile.source import DockerfileSource, Span
from layerbuild.errors import DockerfileError, NotStringArray


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


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("<<  EOF", Heredoc("EOF", "", True, False)),
        ("<<\tEOF", Heredoc("EOF", "", True, False)),
        ("<< -EOF", Heredoc("-EOF", "", True, False)),
        ("<<- EOF", Heredoc("EOF", "", True, True)),
        ("<<eo\\'f", Heredoc("eo'f", "", True, False)),
        ("<<'one two'", Heredoc("one two", "", False, False)),
        ('<<E"O"F', Heredoc("EOF", "", False, False)),
        ("<<$NAME", Heredoc("$NAME", "", True, False)),
        ("<<''", None),
        ("<<a b", None),
        ("<<'EOF", None),
        ('<<EOF"', None),
        ("<<\uff11EOF", Heredoc("\uff11EOF", "", True, False)),
        ("\uff11<<EOF", None),
    ],
)
def test_heredoc_marker_as_buildkit_parses_it(word: str, expected: Heredoc | None) -> None:
    """BuildKit's ParseHeredoc: reHeredoc `^(\\d*)<<(-?)\\s*([^<]*)$` (ASCII digits and blanks,
    the `-` touching `<<`), then the name lexed with quotes removed must be one word, and it is
    expanded unless lexing removed quotes. Unbalanced quotes make no heredoc (MustParseHeredoc
    drops the lexer's error). `<<- EOF` matches as a word, though a line never splits so."""
    assert heredoc_marker(word) == expected


def test_markers_come_from_the_whole_line_lexed_as_buildkit_does() -> None:
    """BuildKit lexes the whole line (keyword and flags too) with quotes and escapes kept; a
    line it cannot lex has no heredocs (the unbalanced quote is after the marker here)."""
    result = _lex("FROM a\nRUN --mount=type=tmpfs,target=/t cat <<  A 2<<'B C'\n1\nA\n2\nB C\n"
                  "RUN cat <<A 'oops\nRUN echo not a body\n")
    run = result.instructions[1]
    assert [(d.name, d.content, d.expand) for d in run.heredocs] == [
        ("A", "1\n", True), ("B C", "2\n", False)]
    assert [r.keyword for r in result.instructions] == ["FROM", "RUN", "RUN", "RUN"]
    assert result.instructions[2].heredocs == ()


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


@pytest.mark.parametrize("text", ['["a"] b', '["a"]b', '["a"] ["b"]', '["a", 1] b', "[NaN]",
                                  '["a", Infinity]', '\x1c["a"]'])
def test_json_form_is_the_whole_argument(text: str) -> None:
    """BuildKit's parseJSON trims Go's unicode.IsSpace (which has no \\x1c) and hands the rest
    to json.Unmarshal, which wants exactly one JSON value: trailing text, or NaN/Infinity that
    Go's JSON does not know, make it not JSON (shell form), never the non-string error."""
    assert parse_json_array(text) is None


def test_json_form_allows_blanks_and_maps_lone_surrogates_as_go_does() -> None:
    """Blanks around the array are fine for json.Unmarshal; Go decodes an unpaired surrogate
    escape to U+FFFD where Python's json would keep it (and fail later when encoding)."""
    assert parse_json_array('\u3000 [ "a" ] \t\n') == ["a"]
    assert parse_json_array('["\\ud800x", "\\ud83d\\ude00"]') == ["\ufffdx", "\U0001f600"]


def test_run_with_a_non_string_array_is_a_parse_error_not_a_crash() -> None:
    """BuildKit: `RUN [1, "<<EOF"]` fails the parse ("arrays must be comprised of strings
    only"); the lexer used to raise its internal exception while looking for heredocs."""
    with pytest.raises(DockerfileError, match="strings only"):
        parse_dockerfile(DockerfileSource("Dockerfile", 'FROM a\nRUN [1, "<<EOF"]\n'))


def test_split_words_keeps_quotes_and_escapes() -> None:
    assert split_words('a=1 b="x y" c=\'$z\' d=e\\ f g=""', "\\") == [
        "a=1", 'b="x y"', "c='$z'", "d=e\\ f", 'g=""']
    assert split_words("a=x`\"y b", "`") == ['a=x`"y', "b"]
