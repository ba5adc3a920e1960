""".dockerignore as a build sees it: `COPY . /app/` of a context, read back with umoci."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, make_context

pytestmark = pytest.mark.tools

FILES: dict[str, str | bytes] = {
    "top.log": "l",
    "keep.txt": "k",
    "sub/nested.log": "l",
    "sub/deeper/more.log": "l",
    "sub/code.py": "c",
    "secret/key.pem": "p",
    "secret/keep.txt": "k",
}


def _copied(lb: Layerbuild, tmp_path: Path, ignore: str, **extra: str) -> set[str]:
    ctx = make_context(
        tmp_path,
        {"Dockerfile": "FROM busybox\nCOPY . /app/\n", ".dockerignore": ignore, **FILES, **extra},
    )
    return _files_under(lb.rootfs(ctx) / "app")


def _files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()}


def test_star_pattern_matches_only_at_the_root(lb: Layerbuild, tmp_path: Path) -> None:
    """`*.log` excludes top.log but not sub/nested.log (patterns are anchored at the root)."""
    files = _copied(lb, tmp_path, "*.log\n")
    assert "top.log" not in files
    assert {"sub/nested.log", "sub/deeper/more.log", "keep.txt"} <= files


def test_double_star_matches_at_any_depth(lb: Layerbuild, tmp_path: Path) -> None:
    """`**/*.log` excludes .log files at every depth, the root included."""
    files = _copied(lb, tmp_path, "**/*.log\n")
    assert not {f for f in files if f.endswith(".log")}
    assert {"keep.txt", "sub/code.py"} <= files


def test_exception_re_includes_inside_an_excluded_dir(lb: Layerbuild, tmp_path: Path) -> None:
    """`secret` then `!secret/keep.txt`: the directory is skipped except for the one file."""
    files = _copied(lb, tmp_path, "secret\n!secret/keep.txt\n")
    assert "secret/keep.txt" in files
    assert "secret/key.pem" not in files


def test_later_rule_wins(lb: Layerbuild, tmp_path: Path) -> None:
    """The last matching line decides: `!keep.txt` before `*.txt` does not save keep.txt."""
    files = _copied(lb, tmp_path, "!keep.txt\n*.txt\n")
    assert "keep.txt" not in files
    assert "secret/keep.txt" in files


def test_comments_and_dockerfile_itself(lb: Layerbuild, tmp_path: Path) -> None:
    """Comment lines are ignored; ignoring the Dockerfile and .dockerignore still builds,
    and leaves both out of COPY ."""
    files = _copied(lb, tmp_path, "# a comment\nDockerfile\n.dockerignore\n")
    assert "Dockerfile" not in files and ".dockerignore" not in files
    assert "keep.txt" in files


def test_ignored_file_named_explicitly_is_missing(lb: Layerbuild, tmp_path: Path) -> None:
    """COPY of a file the .dockerignore excludes fails as if the file were not there."""
    ctx = make_context(
        tmp_path,
        {"Dockerfile": "FROM busybox\nCOPY top.log /x/\n", ".dockerignore": "*.log\n", **FILES},
    )
    proc = lb("build", "-t", "x:1", ctx)
    assert proc.returncode != 0
    assert "top.log" in proc.stderr


def test_dockerfile_specific_ignore_file_wins(lb: Layerbuild, tmp_path: Path) -> None:
    """With -f build/app.Dockerfile, build/app.Dockerfile.dockerignore is used instead of
    the context's .dockerignore."""
    ctx = make_context(
        tmp_path,
        {
            "build/app.Dockerfile": "FROM busybox\nCOPY . /app/\n",
            "build/app.Dockerfile.dockerignore": "keep.txt\nbuild\n",
            ".dockerignore": "sub\n",
            **FILES,
        },
    )
    files = _files_under(lb.rootfs(ctx, "-f", ctx / "build/app.Dockerfile") / "app")
    assert "keep.txt" not in files
    assert "sub/code.py" in files  # the .dockerignore was not read
    assert not {f for f in files if f.startswith("build/")}


def test_plain_dockerignore_used_with_other_dockerfile(lb: Layerbuild, tmp_path: Path) -> None:
    """Without a <name>.dockerignore, -f OTHER still uses the context's .dockerignore."""
    ctx = make_context(
        tmp_path,
        {"other.Dockerfile": "FROM busybox\nCOPY . /app/\n", ".dockerignore": "sub\n", **FILES},
    )
    files = _files_under(lb.rootfs(ctx, "-f", ctx / "other.Dockerfile") / "app")
    assert not {f for f in files if f.startswith("sub/")}
    assert "keep.txt" in files
