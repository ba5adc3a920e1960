"""Fixtures for the integration suite: every test drives `python -m layerbuild` in a subprocess.

The busybox base image is written once per session by fixtures/make_busybox_base.py (standard
library only, so the base never depends on the code under test) and loaded through the CLI into
a template store; each test gets its own copy of that store, so tests never share state.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.support.cli import REPO, Layerbuild
from tests.support.cli import make_context as _make_context
from tests.support.cli import unpack as _unpack

MakeContext = Callable[[Path, Mapping[str, str | bytes]], Path]


@pytest.fixture(scope="session")
def busybox_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCI layout directory holding busybox under the tag `latest`."""
    out = tmp_path_factory.mktemp("busybox") / "layout"
    subprocess.run(
        [sys.executable, str(REPO / "fixtures" / "make_busybox_base.py"), str(out)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def _loaded_store(busybox_layout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("template") / "store"
    Layerbuild(store).ok("load", busybox_layout, "-t", "busybox:latest")
    return store


@pytest.fixture
def store_root(_loaded_store: Path, tmp_path: Path) -> Path:
    """A fresh LAYERBUILD_ROOT for this test, with busybox loaded as busybox:latest."""
    root = tmp_path / "store"
    shutil.copytree(_loaded_store, root, symlinks=True)
    return root


@pytest.fixture
def new_store(_loaded_store: Path, tmp_path: Path) -> Callable[[str], Layerbuild]:
    """new_store(name) -> the CLI over another fresh store (busybox loaded), for tests that
    compare stores."""

    def make(name: str) -> Layerbuild:
        root = tmp_path / name
        shutil.copytree(_loaded_store, root, symlinks=True)
        return Layerbuild(root)

    return make


@pytest.fixture
def lb(store_root: Path) -> Layerbuild:
    """lb(*args) runs `layerbuild --root STORE *args` and returns the CompletedProcess."""
    return Layerbuild(store_root)


@pytest.fixture
def make_context() -> MakeContext:
    """make_context(tmp_path, {rel: text|bytes}) -> the context directory."""
    return _make_context


@pytest.fixture
def unpack() -> Callable[[Path, str], Path]:
    """unpack(oci_tar_or_dir, tag) -> the rootfs umoci unpacked."""
    return _unpack
