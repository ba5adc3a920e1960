"""The pure parts of runner.py; running for real is in tests/integration/sandbox."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from layerbuild.errors import SandboxError
from layerbuild.sandbox import RunSpec, run


def test_bad_specs_are_refused_before_anything_runs(tmp_path: Path) -> None:
    spec = RunSpec(("true",), (), "/", 0, 0, (tmp_path,), tmp_path / "u", tmp_path / "w")
    with pytest.raises(SandboxError, match="network mode"):
        run(dataclasses.replace(spec, network="bridge"))
    with pytest.raises(SandboxError, match="no command"):
        run(dataclasses.replace(spec, argv=()))
