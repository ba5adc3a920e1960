"""The pure parts of runner.py; running for real is in tests/integration/sandbox."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from layerbuild.sandbox import RunSpec, SandboxError, run
from layerbuild.sandbox.runner import resolv_conf


def test_loopback_resolvers_are_dropped_without_host_network() -> None:
    host = "search example.org\nnameserver 127.0.0.53\nnameserver 10.0.0.2\n"
    assert resolv_conf(host, False) == "search example.org\nnameserver 10.0.0.2\n"
    assert resolv_conf(host, True) == host
    assert resolv_conf("nameserver ::1\n", False) == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_bad_specs_are_refused_before_anything_runs(tmp_path: Path) -> None:
    spec = RunSpec(("true",), (), "/", 0, 0, (tmp_path,), tmp_path / "u", tmp_path / "w")
    with pytest.raises(SandboxError, match="network mode"):
        run(dataclasses.replace(spec, network="bridge"))
    with pytest.raises(SandboxError, match="no command"):
        run(dataclasses.replace(spec, argv=()))
