"""Fixtures for multi-platform builds.

Name: multiplatform_layout · Scope: session · Depends: the Debian package registry, the first
    time on a machine (fixtures/make_multiplatform_busybox.py keeps its result in the fixture
    cache), root to add the arm64 package list then
    An OCI layout whose `latest` is an image index of busybox for linux/amd64 and
    linux/arm64/v8.
Name: qemu_binfmt · Scope: session · Depends: root, Debian's qemu-user-static
    The QEMU interpreters registered with binfmt_misc (F flag), through `layerbuild binfmt`
    when qemu-aarch64 is not registered so: RUN steps of linux/arm64 then run here.
Name: registry · Depends: docker-registry (tests/support/registry.py)
    An anonymous Distribution registry on 127.0.0.1.
Name: mlb · Depends: store_root, multiplatform_layout
    The CLI over a fresh store holding busybox:latest (amd64 only) and the index as
    mbusybox:latest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from layerbuild.sandbox.binfmt import read_handler
from tests.support.cli import REPO, Layerbuild
from tests.support.registry import registry

__all__ = ["registry"]


@pytest.fixture(scope="session")
def multiplatform_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("multiplatform") / "layout"
    script = REPO / "fixtures" / "make_multiplatform_busybox.py"
    proc = subprocess.run(
        [sys.executable, str(script), str(out)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"{script.name} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return out


@pytest.fixture(scope="session")
def qemu_binfmt(tmp_path_factory: pytest.TempPathFactory) -> None:
    handler = read_handler("qemu-aarch64")
    if handler is None or not handler.enabled or "F" not in handler.flags:
        Layerbuild(tmp_path_factory.mktemp("binfmt") / "store").ok("binfmt")
    handler = read_handler("qemu-aarch64")
    assert handler is not None and "F" in handler.flags


@pytest.fixture
def mlb(store_root: Path, multiplatform_layout: Path) -> Layerbuild:
    lb = Layerbuild(store_root)
    lb.ok("load", multiplatform_layout, "-t", "mbusybox:latest")
    return lb
