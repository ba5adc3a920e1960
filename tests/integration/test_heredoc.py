"""COPY with heredoc sources: expansion rules, several heredocs, <<- tab stripping."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, make_context

pytestmark = pytest.mark.tools


def _rootfs(lb: Layerbuild, tmp_path: Path, dockerfile: str, *args: str) -> Path:
    return lb.rootfs(make_context(tmp_path, {"Dockerfile": dockerfile}), *args)


def test_unquoted_delimiter_expands_variables(lb: Layerbuild, tmp_path: Path) -> None:
    """COPY <<EOF expands $VAR and ${VAR} from ARG and ENV in the body."""
    root = _rootfs(
        lb,
        tmp_path,
        "FROM busybox\nARG NAME=world\nENV PLACE=here\n"
        "COPY <<EOF /greeting.txt\nhello $NAME\nfrom ${PLACE}\nEOF\n",
        "--build-arg",
        "NAME=layerbuild",
    )
    assert (root / "greeting.txt").read_text() == "hello layerbuild\nfrom here\n"


@pytest.mark.parametrize("quote", ['"', "'"])
def test_quoted_delimiter_is_literal(lb: Layerbuild, tmp_path: Path, quote: str) -> None:
    """COPY <<"EOF" (or <<'EOF') keeps $VAR and backslashes as written."""
    root = _rootfs(
        lb,
        tmp_path,
        f"FROM busybox\nENV NAME=x\nCOPY <<{quote}EOF{quote} /lit.txt\n$NAME ${{NAME}} \\n\nEOF\n",
    )
    assert (root / "lit.txt").read_text() == "$NAME ${NAME} \\n\n"


def test_several_heredocs_in_one_copy(lb: Layerbuild, tmp_path: Path) -> None:
    """COPY <<ONE <<TWO /dir/ writes one file per heredoc, named after its delimiter, in one
    layer."""
    root = _rootfs(
        lb,
        tmp_path,
        "FROM busybox\nCOPY <<one.txt <<two.txt /multi/\nfirst\nbody\none.txt\nsecond\ntwo.txt\n",
    )
    assert (root / "multi/one.txt").read_text() == "first\nbody\n"
    assert (root / "multi/two.txt").read_text() == "second\n"
    assert len(lb.inspect("test:1")["Layers"]) == 2  # busybox + the one COPY


def test_dash_strips_leading_tabs(lb: Layerbuild, tmp_path: Path) -> None:
    """COPY <<-EOF strips leading tabs (not spaces) from body lines and the delimiter line."""
    root = _rootfs(
        lb,
        tmp_path,
        "FROM busybox\nCOPY <<-EOF /tabs.txt\n\t\tindented\n    spaces kept\n\tEOF\n",
    )
    assert (root / "tabs.txt").read_text() == "indented\n    spaces kept\n"


def test_heredoc_with_chmod_and_chown(lb: Layerbuild, tmp_path: Path) -> None:
    """Flags apply to heredoc files like to context files."""
    root = _rootfs(
        lb,
        tmp_path,
        "FROM busybox\nCOPY --chmod=755 --chown=app <<EOF /usr/local/bin/hello\n"
        "#!/bin/sh\necho hello\nEOF\n",
    )
    st = (root / "usr/local/bin/hello").stat()
    assert st.st_mode & 0o7777 == 0o755
    assert (st.st_uid, st.st_gid) == (1000, 1000)


def test_heredoc_mixed_with_context_file(lb: Layerbuild, tmp_path: Path) -> None:
    """A heredoc and a context file in the same COPY both land in the directory."""
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\n"
            "COPY real.txt <<inline.txt /mix/\nmade inline\ninline.txt\n",
            "real.txt": "from context\n",
        },
    )
    root = lb.rootfs(ctx)
    assert (root / "mix/real.txt").read_text() == "from context\n"
    assert (root / "mix/inline.txt").read_text() == "made inline\n"


def test_name_with_an_escaped_quote_is_expanded(lb: Layerbuild, tmp_path: Path) -> None:
    """BuildKit reads `<<eo\\'f` as the heredoc named `eo'f` (the escaped quote is part of the
    name, not quoting) and expands its body; `<<"a"b` names `ab` and, partly quoted, is
    verbatim. The files are named after the heredocs."""
    root = _rootfs(
        lb,
        tmp_path,
        "FROM busybox\nENV NAME=x\nCOPY <<eo\\'f /d/\n$NAME\neo'f\n"
        'COPY <<"a"b /d/\n$NAME\nab\n',
    )
    assert (root / "d/eo'f").read_text() == "x\n"
    assert (root / "d/ab").read_text() == "$NAME\n"


@pytest.mark.root
@pytest.mark.overlay
def test_run_marker_with_blanks_runs_the_body(lb: Layerbuild, tmp_path: Path) -> None:
    """BuildKit: `RUN <<  EOF` is the heredoc EOF (blanks after `<<` are allowed) and, being the
    whole command, its body is the script; `RUN << -EOF` is the heredoc named `-EOF`. Before,
    the body lines were read as instructions."""
    root = _rootfs(
        lb,
        tmp_path,
        "FROM busybox\nRUN <<  EOF\necho blanks > /one\nEOF\n"
        "RUN << -EOF\necho dash > /two\n-EOF\n",
    )
    assert (root / "one").read_text() == "blanks\n"
    assert (root / "two").read_text() == "dash\n"
