"""Tests of engine/runstep.py: when a RUN heredoc is the whole script (BuildKit dispatchRun)."""

from __future__ import annotations

import pytest

from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.parser import parse_dockerfile
from layerbuild.dockerfile.source import DockerfileSource
from layerbuild.engine.runstep import run_argv, run_command

SH = ("/bin/sh", "-c")


def _run(text: str) -> ins.Run:
    instr = parse_dockerfile(DockerfileSource("Dockerfile", "FROM a\n" + text)).stages[0]
    run = instr.instructions[0]
    assert isinstance(run, ins.Run)
    return run


@pytest.mark.parametrize(
    "text",
    [
        "RUN <<EOF\necho hi\nEOF\n",
        "RUN <<  EOF\necho hi\nEOF\n",
        "RUN << -EOF\necho hi\n-EOF\n",
        "RUN <<eo\\'f\necho hi\neo'f\n",
        "RUN <<'one two'\necho hi\none two\n",
        "RUN 3<<EOF\necho hi\nEOF\n",
    ],
)
def test_a_lone_heredoc_marker_is_the_script(text: str) -> None:
    """BuildKit's dispatchRun runs the first body as the shell's script when the command is one
    heredoc marker by parser.MustParseHeredoc: blanks after `<<`, a name with an escaped quote
    or a quoted blank, and a descriptor number all count (the shell never sees the marker)."""
    assert run_argv(_run(text), SH) == (*SH, "echo hi\n")


def test_other_heredoc_commands_go_to_the_shell_with_their_bodies() -> None:
    """BuildKit: any other command with heredocs is passed to the shell followed by each body
    and its terminator, so that the shell reads the heredocs itself."""
    run = _run("RUN cat <<  EOF > /f\nhi\nEOF\n")
    assert run_argv(run, SH) == (*SH, "cat <<  EOF > /f\nhi\nEOF\n")


def test_a_lone_marker_with_blanks_and_a_shebang_runs_the_interpreter() -> None:
    """BuildKit: a single-heredoc RUN whose body starts with `#!` is run as a file by that
    interpreter, whatever blanks follow `<<`."""
    run = _run("RUN <<  EOF\n#!/usr/bin/python3\nprint(1)\nEOF\n")
    assert run_command(run, SH) == (("/usr/bin/python3",), b"#!/usr/bin/python3\nprint(1)\n")
