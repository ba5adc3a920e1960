"""exit_on_failure: the one place where an error becomes a message and an exit status."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from layerbuild.cli.context import Context
from layerbuild.cli.failure import exit_on_failure
from layerbuild.errors import ContextError, DockerfileError, ExitCode


def _exit_status(error: BaseException, context: Context | None) -> object:
    with pytest.raises(SystemExit) as exited, exit_on_failure(lambda: context):
        raise error
    return exited.value.code


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (DockerfileError("unknown instruction", line=3), ExitCode.DOCKERFILE),
        (ContextError("no such file: a.txt"), ExitCode.CONTEXT),
        (OSError(errno.ENOSPC, "No space left on device", "/x"), ExitCode.HOST),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED),
    ],
)
def test_failures_exit_with_their_status(
    error: BaseException, status: ExitCode, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _exit_status(error, Context(None, debug=False))
    assert code == status and isinstance(code, ExitCode)
    err = capsys.readouterr().err
    assert err.startswith("interrupted" if status == ExitCode.INTERRUPTED else "error: ")


def test_a_failure_before_the_context_exists_still_exits(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _exit_status(OSError(errno.EROFS, "Read-only file system", "/s"), None) == 9
    assert "Read-only file system: /s" in capsys.readouterr().err


def test_a_full_disk_in_the_store_names_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    error = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "blobs" / "x"))
    assert _exit_status(error, Context(tmp_path, debug=False)) == ExitCode.HOST
    assert f"(in the store at {tmp_path})" in capsys.readouterr().err


def test_debug_keeps_the_traceback() -> None:
    with pytest.raises(ContextError), exit_on_failure(lambda: Context(None, debug=True)):
        raise ContextError("missing")


@pytest.mark.parametrize("code", [errno.EPIPE, errno.EBADF])
def test_other_oserrors_are_not_ours(code: int) -> None:
    # a bug keeps its traceback; a broken pipe goes on to click, which exits 1 quietly
    with pytest.raises(OSError), exit_on_failure(lambda: Context(None, debug=False)):
        raise OSError(code, "why")
