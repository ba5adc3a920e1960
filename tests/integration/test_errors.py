"""Failing builds: each error is actionable (where, what, what to do), exits non-zero with its
own status, writes no image and leaves no temp file in the store."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.cli import Layerbuild, make_context, stray_files


def _fails(lb: Layerbuild, ctx: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Build ctx as err:1 expecting failure; check the store is as it was before."""
    before = lb.image_names()
    proc = lb("build", "--progress", "plain", "-t", "err:1", *args, ctx)
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lb.image_names() == before
    assert stray_files(lb.store) == []
    return proc


def _dockerfile(tmp_path: Path, text: str) -> Path:
    return make_context(tmp_path, {"Dockerfile": text, "a.txt": "a"})


def test_unknown_instruction(lb: Layerbuild, tmp_path: Path) -> None:
    """An unknown instruction exits 2 with file:line, the source line and a suggestion."""
    ctx = _dockerfile(tmp_path, "FROM busybox\n\nCOPY a.txt /\nFROB the widget\n")
    proc = _fails(lb, ctx)
    assert proc.returncode == 2
    assert f"{ctx / 'Dockerfile'}:4" in proc.stderr
    assert "FROB the widget" in proc.stderr
    assert "unknown instruction" in proc.stderr


def test_bad_flag_suggests_the_right_one(lb: Layerbuild, tmp_path: Path) -> None:
    """A misspelled flag names itself, suggests the closest flag and lists the valid ones."""
    ctx = _dockerfile(tmp_path, "FROM busybox\nCOPY --chonw=app a.txt /\n")
    proc = _fails(lb, ctx)
    assert proc.returncode == 2
    assert "--chonw" in proc.stderr and "did you mean --chown" in proc.stderr
    assert "Dockerfile:2" in proc.stderr


def test_missing_from(lb: Layerbuild, tmp_path: Path) -> None:
    """An instruction before the first FROM (other than ARG) is refused with its line."""
    ctx = _dockerfile(tmp_path, "# comment\nCOPY a.txt /\nFROM busybox\n")
    proc = _fails(lb, ctx)
    assert proc.returncode == 2
    assert "Dockerfile:2" in proc.stderr and "FROM" in proc.stderr


def test_empty_dockerfile(lb: Layerbuild, tmp_path: Path) -> None:
    """A Dockerfile with no instructions at all fails and says a FROM is needed."""
    proc = _fails(lb, _dockerfile(tmp_path, "# nothing here\n\n"))
    assert proc.returncode == 2
    assert "FROM" in proc.stderr


def test_unknown_from_stage_index(lb: Layerbuild, tmp_path: Path) -> None:
    """COPY --from=<index> past the known stages names the index and the valid range."""
    ctx = _dockerfile(tmp_path, "FROM busybox\nCOPY --from=3 /x /\n")
    proc = _fails(lb, ctx)
    assert proc.returncode == 2
    assert "Dockerfile:2" in proc.stderr and "3" in proc.stderr


def test_unknown_from_name_is_an_image_lookup(lb: Layerbuild, tmp_path: Path) -> None:
    """COPY --from=<name> that is no stage is an image reference (as in Docker): not in the
    store (pulling off), so the message says how to load it."""
    ctx = _dockerfile(tmp_path, "FROM busybox AS base\nCOPY --from=bsae /x /\n")
    proc = _fails(lb, ctx, "--no-pull")
    assert "bsae" in proc.stderr
    assert "layerbuild load" in proc.stderr


def test_stage_cycle(lb: Layerbuild, tmp_path: Path) -> None:
    """Two stages copying from each other are refused as a cycle, naming a line of it."""
    ctx = _dockerfile(
        tmp_path,
        "FROM busybox AS a\nCOPY --from=b /x /\nFROM busybox AS b\nCOPY --from=a /y /\n",
    )
    proc = _fails(lb, ctx)
    assert proc.returncode == 2
    assert "Dockerfile:2" in proc.stderr or "Dockerfile:4" in proc.stderr


def test_unterminated_heredoc(lb: Layerbuild, tmp_path: Path) -> None:
    """A heredoc without its closing delimiter names the delimiter and the opening line."""
    ctx = _dockerfile(tmp_path, "FROM busybox\nCOPY <<EOF /x\nhello\nworld\n")
    proc = _fails(lb, ctx)
    assert proc.returncode == 2
    assert "EOF" in proc.stderr and "Dockerfile:2" in proc.stderr


def test_missing_dockerfile(lb: Layerbuild, tmp_path: Path) -> None:
    """No Dockerfile in the context (or at -f) fails, naming the path it looked for."""
    ctx = make_context(tmp_path, {"a.txt": "a"})
    proc = _fails(lb, ctx)
    assert str(ctx / "Dockerfile") in proc.stderr
    assert "-f" in proc.stderr
    proc = _fails(lb, ctx, "-f", ctx / "Other.Dockerfile")
    assert "Other.Dockerfile" in proc.stderr


def test_missing_context_directory(lb: Layerbuild, tmp_path: Path) -> None:
    """A context path that does not exist fails without a traceback, naming the path."""
    proc = _fails(lb, tmp_path / "nowhere")
    assert "nowhere" in proc.stderr


def test_missing_base_image_says_how_to_load_it(lb: Layerbuild, tmp_path: Path) -> None:
    """FROM an image that is not in the store (pulling off) says so and how to load the image
    or use an OCI layout."""
    ctx = _dockerfile(tmp_path, "FROM alpine:3.19\nCOPY a.txt /\n")
    proc = _fails(lb, ctx, "--no-pull")  # hermetic: never ask Docker Hub
    assert "alpine:3.19" in proc.stderr
    assert "layerbuild load" in proc.stderr
    assert "oci-layout://" in proc.stderr


def test_failure_after_layers_keeps_store_clean(lb: Layerbuild, tmp_path: Path) -> None:
    """A build that fails after writing layers leaves no temp file and no new tag; the old
    image of the tag stays."""
    ctx = _dockerfile(tmp_path, "FROM busybox\nCOPY a.txt /a\n")
    lb.build(ctx, "-t", "err:1")
    before = lb.inspect("err:1")["Digest"]
    (ctx / "big.bin").write_bytes(b"\0" * 3_000_000)
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY big.bin /\nCOPY missing.txt /\n")
    proc = _fails(lb, ctx)
    assert "missing.txt" in proc.stderr
    assert lb.inspect("err:1")["Digest"] == before


def test_undefined_variable_syntax_error(lb: Layerbuild, tmp_path: Path) -> None:
    """A ${VAR:?message} on an unset variable fails with the message and the line."""
    ctx = _dockerfile(tmp_path, "FROM busybox\nENV X=${NEEDED:?set NEEDED please}\n")
    proc = _fails(lb, ctx)
    assert "set NEEDED please" in proc.stderr
    assert "Dockerfile:2" in proc.stderr


def test_bad_build_arg_and_option(lb: Layerbuild, tmp_path: Path) -> None:
    """CLI-level mistakes (unknown option, bad --build-context) exit non-zero with usage."""
    ctx = _dockerfile(tmp_path, "FROM busybox\n")
    proc = _fails(lb, ctx, "--no-such-option")
    assert "--no-such-option" in proc.stderr
    proc = _fails(lb, ctx, "--build-context", "nonsense")
    assert "NAME=VALUE" in proc.stderr or "nonsense" in proc.stderr


def test_colon_prefix_removal_is_refused(lb: Layerbuild, tmp_path: Path) -> None:
    """BuildKit fails `${v:#p}` (and `:##`, `:%`, `:%%`) with "unsupported modifier"; so does
    layerbuild, exit 2 with file and line, where it used to apply `${v#p}` silently. In a COPY
    heredoc body the error names the COPY's line."""
    ctx = _dockerfile(tmp_path, "FROM busybox\nARG V=a.b\nENV X=${V:%.*}\n")
    proc = _fails(lb, ctx)
    assert proc.returncode == 2
    assert "Dockerfile:3" in proc.stderr and "unsupported modifier (:%)" in proc.stderr
    body = "FROM busybox\nARG V=a.b\nCOPY <<EOF /x\n${V:##*.}\nEOF\n"
    ctx = _dockerfile(tmp_path / "body", body)
    proc = _fails(lb, ctx)
    assert proc.returncode == 2
    assert "Dockerfile:3" in proc.stderr and "unsupported modifier (:#)" in proc.stderr
