from __future__ import annotations

import pytest

from layerbuild.dockerfile.instructions import Arg, Copy, Healthcheck, Onbuild, Run, Shell
from layerbuild.dockerfile.parser import Dockerfile, parse_dockerfile
from layerbuild.dockerfile.source import DockerfileSource, Span
from layerbuild.errors import DockerfileError

MULTI = """\
# syntax=docker/dockerfile:1
ARG BASE=alpine
FROM $BASE AS Build
RUN make
FROM build AS final
COPY --from=build /out /out
FROM scratch
"""


def _parse(text: str) -> Dockerfile:
    return parse_dockerfile(DockerfileSource("Dockerfile", text))


def _error(text: str) -> DockerfileError:
    with pytest.raises(DockerfileError) as info:
        _parse(text)
    return info.value


def test_stages_global_args_and_directives() -> None:
    dockerfile = _parse(MULTI)
    assert dockerfile.directives == {"syntax": "docker/dockerfile:1"}
    assert dockerfile.escape == "\\"
    assert [a.pairs for a in dockerfile.global_args] == [(("BASE", "alpine"),)]
    assert [(s.index, s.name, s.from_.image) for s in dockerfile.stages] == [
        (0, "build", "$BASE"), (1, "final", "build"), (2, None, "scratch")]
    copy = dockerfile.stages[1].instructions[0]
    assert isinstance(copy, Copy) and copy.from_stage == "build" and copy.span == Span(6, 6)


def test_stage_lookup_by_name_or_index() -> None:
    dockerfile = _parse(MULTI)
    assert dockerfile.stage("BUILD") is dockerfile.stages[0]
    assert dockerfile.stage("1") is dockerfile.stages[1]
    assert dockerfile.stage(2) is dockerfile.stages[2]
    assert dockerfile.stage("missing") is None and dockerfile.stage("7") is None


def test_original_keeps_text_as_written() -> None:
    run = _parse("FROM a\nrun  echo \\\n  hi\n").stages[0].instructions[0]
    assert isinstance(run, Run)
    assert run.original == "run  echo   hi" and run.command == ("echo   hi",)


def test_arg_after_from_belongs_to_stage() -> None:
    dockerfile = _parse("FROM a\nARG X=1\n")
    assert dockerfile.global_args == ()
    assert isinstance(dockerfile.stages[0].instructions[0], Arg)


def test_heredoc_run_with_command() -> None:
    run = _parse("FROM a\nRUN python3 <<EOF\nprint(1)\nEOF\n").stages[0].instructions[0]
    assert isinstance(run, Run)
    assert run.command == ("python3 <<EOF",) and run.shell_form
    assert [(h.name, h.content, h.expand) for h in run.heredocs] == [("EOF", "print(1)\n", True)]


def test_copy_heredoc_sources_are_named() -> None:
    copy = _parse("FROM a\nCOPY <<'A' b <<B /d/\n1\nA\n2\nB\n").stages[0].instructions[0]
    assert isinstance(copy, Copy)
    assert copy.sources == ("<<A", "b", "<<B") and copy.dest == "/d/"
    assert [(h.name, h.expand) for h in copy.heredocs] == [("A", False), ("B", True)]


def test_healthcheck_values() -> None:
    text = 'FROM a\nHEALTHCHECK --timeout=1.5s --retries=0 CMD ["x"]\n'
    hc = _parse(text).stages[0].instructions[0]
    assert isinstance(hc, Healthcheck)
    assert hc.test == ("CMD", "x") and hc.timeout_ns == 1_500_000_000 and hc.retries == 0


def test_shell_and_onbuild() -> None:
    instrs = _parse('FROM a\nSHELL ["pwsh", "-c"]\nONBUILD  ADD . /x\n').stages[0].instructions
    assert isinstance(instrs[0], Shell) and instrs[0].command == ("pwsh", "-c")
    assert isinstance(instrs[1], Onbuild) and instrs[1].trigger == "ADD . /x"


@pytest.mark.parametrize(
    ("text", "line", "message", "hint"),
    [
        ("FROM a\nWROKDIR /x\n", 2, "unknown instruction WROKDIR", "did you mean WORKDIR?"),
        ("FROM a\nCOPY --chmd=7 a b\n", 2, "unknown flag --chmd", "did you mean --chmod?"),
        ("FROM a\nRUN --mount a\n", 2, "--mount needs a value", "--mount=<value>"),
        ("FROM a\nONBUILD RUUN x\n", 2, "unknown instruction RUUN", "did you mean RUN?"),
        ("FROM a\nONBUILD MAINTAINER x\n", 2, "MAINTAINER isn't allowed", None),
        ("FROM a\nHEALTHCHECK --interval=10us CMD x\n", 2, "less than 1ms", None),
        ("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", 2, "cannot be negative", None),
        ("FROM a\nHEALTHCHECK --retries=x CMD x\n", 2, "not a whole number", None),
        ("FROM a\nHEALTHCHECK NONE x\n", 2, "NONE takes no arguments", None),
        ("FROM a\nHEALTHCHECK CMD\n", 2, "missing command after CMD", None),
        ("FROM a\nHEALTHCHECK CMD []\n", 2, "missing command after CMD", None),
        ("FROM a\nSHELL []\n", 2, "the shell is empty", None),
        ("FROM a\nENV =x\n", 2, "a name is empty", None),
        ("FROM a\nENV A=1 B\n", 2, "'B' has no value", "B=<value>"),
        ("FROM a\nWORKDIR\n", 2, "missing arguments", "WORKDIR /path"),
        ("FROM a\nEXPOSE\n", 2, "missing arguments", None),
        ("FROM a b\n", 1, "expected FROM <image>", "AS"),
        ("FROM a AS b-\nFROM c AS B-\n", 2, "duplicate stage name 'b-'", "line 1"),
        ("FROM a\nRUN []\n", 2, "command is empty", None),
        ("FROM a\nRUN --security=root x\n", 2, "unsupported --security", None),
        ("FROM a\nCOPY --parents=maybe a b\n", 2, "expects true or false", None),
        ("FROM a\nADD --parents a b\n", 2, "unknown flag --parents", None),
        ("FROM a\nENV --x=1 A=b\n", 2, "unknown flag --x", "ENV accepts no flags"),
    ],
)
def test_errors_say_where_and_what_to_do(
    text: str, line: int, message: str, hint: str | None
) -> None:
    error = _error(text)
    assert error.line == line
    assert message in error.message
    assert error.source_line == text.splitlines()[line - 1]
    assert error.file == "Dockerfile"
    if hint is not None:
        assert error.hint is not None and hint in error.hint


def test_error_for_unterminated_heredoc_names_it() -> None:
    error = _error("FROM a\nCOPY <<one <<two /d\n1\none\n2\n")
    assert "<<two" in error.message and error.line == 2
    assert error.hint is not None and "only two" in error.hint


def test_no_instructions() -> None:
    error = _error("# only a comment\n")
    assert error.line is None and "no instructions" in error.message


def test_crlf_and_bom() -> None:
    dockerfile = _parse("\ufeffFROM a\r\nRUN x \\\r\n y\r\n")
    run = dockerfile.stages[0].instructions[0]
    assert isinstance(run, Run) and run.command == ("x  y",) and run.span == Span(2, 3)
