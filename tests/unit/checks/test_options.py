"""The `check=` option syntax (BuildKit's ParseLintOptions) and the comments above an
instruction that may carry one."""

from __future__ import annotations

import pytest

from layerbuild.checks.comments import comments_above
from layerbuild.checks.options import CheckOptions, options_from_comments, parse_check_options
from layerbuild.dockerfile.lexer import lex
from layerbuild.dockerfile.source import DockerfileSource


@pytest.mark.parametrize(("text", "expected"), [
    ("", CheckOptions()),
    ("skip=all", CheckOptions(skip_all=True)),
    (" skip = A, B ;error=true", CheckOptions(skip=frozenset({"A", "B"}), error=True)),
    ("error=1", CheckOptions(error=True)),
    ("error=False", CheckOptions()),
    ("experimental=all;skip=A", CheckOptions(skip=frozenset({"A"}))),
])
def test_parse(text: str, expected: CheckOptions) -> None:
    assert parse_check_options(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("skip", "invalid check option 'skip'"),
    ("skipp=A", "invalid check option 'skipp'"),
    ("error=yes", "failed to parse check option 'error=yes'"),
])
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_check_options(text)


def test_comment_options_take_the_first_check_and_stop_at_a_blank() -> None:
    found = options_from_comments(["a note", "check=skip=A // why", "check=skip=B"])
    assert found == CheckOptions(skip=frozenset({"A"}))
    assert options_from_comments(["check=bogus"]) is None
    assert options_from_comments(["nothing here"]) is None


def test_comments_above_follow_buildkits_parser() -> None:
    text = ("# check=skip=A\n# syntax=x\n\n# one\n\n# two\nFROM scratch\n# three\n#\n# four\n"
            "RUN a \\\n# inside\n  b\nCMD c\n")
    source = DockerfileSource("Dockerfile", text)
    comments = comments_above(source, lex(source).instructions)
    # directives are not comments; a blank line keeps comments, an empty `#` drops them
    assert comments == {7: ("one", "two"), 11: ("four",), 14: ()}
