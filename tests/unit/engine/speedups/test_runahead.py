"""RunAhead on its own: a result is handed over only when asked for as valid; anything else
is thrown away, directories included, and an error is raised only where it would count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.engine.runstep import RunResult
from layerbuild.engine.speedups.runahead import RunAhead
from layerbuild.errors import BuildError
from layerbuild.store.layers import LayerSnapshots

KEY = sha256_bytes(b"run")


def _ahead(tmp_path: Path, *, ready: bool = True, fail: bool = False) -> tuple[RunAhead, Path]:
    snaps = LayerSnapshots(tmp_path / "store")
    step = snaps.prepare_step()

    def execute(**kw: Any) -> RunResult:
        kw["log"]("a line")
        if fail:
            raise BuildError("process 'false' did not complete successfully: exit code 1")
        return RunResult([], step)

    # the directories of the snapshot below, as copykeys gives them once written (None: not)
    below = (tmp_path / "below",) if ready else None
    return RunAhead(KEY, lambda: below, execute, snaps), step.tmp


def test_a_valid_run_hands_over_its_result_and_output(tmp_path: Path) -> None:
    ahead, step = _ahead(tmp_path)
    result, lines = ahead.take(lambda: True)
    assert result is not None and result.step.tmp == step and lines == ["a line"]
    assert step.is_dir()  # the caller commits or discards it


def test_an_invalid_run_is_thrown_away_with_its_directories(tmp_path: Path) -> None:
    ahead, step = _ahead(tmp_path)
    assert ahead.take(lambda: False) == (None, [])
    assert not step.exists()


def test_an_error_counts_only_for_a_valid_run(tmp_path: Path) -> None:
    ahead, _ = _ahead(tmp_path, fail=True)
    with pytest.raises(BuildError, match="exit code 1"):
        ahead.take(lambda: True)
    ahead, _ = _ahead(tmp_path, fail=True)
    assert ahead.take(lambda: False) == (None, [])


def test_no_snapshot_below_means_nothing_ran(tmp_path: Path) -> None:
    asked: list[bool] = []
    ahead, _ = _ahead(tmp_path, ready=False)
    assert ahead.take(lambda: asked.append(True) or True) == (None, [])
    assert not asked
