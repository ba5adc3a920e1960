"""secure_join resolves symlinks as the container would, never outside the rootfs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from layerbuild.errors import SandboxError
from layerbuild.sandbox.securejoin import secure_join


@pytest.fixture
def root(tmp_path: Path) -> str:
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    (r / "run" / "resolve").mkdir(parents=True)
    os.symlink("../run/resolve/stub.conf", r / "etc" / "resolv.conf")
    os.symlink("/etc", r / "abs")
    os.symlink("../../../../../../etc", r / "climb")
    os.symlink("loop2", r / "loop1")
    os.symlink("loop1", r / "loop2")
    return str(r)


def test_plain_and_missing_paths_join(root: str) -> None:
    assert secure_join(root, "/etc/hosts") == f"{root}/etc/hosts"
    assert secure_join(root, "/") == root
    assert secure_join(root, "/new/dir/../x") == f"{root}/new/x"


def test_symlinks_resolve_inside_the_root(root: str) -> None:
    assert secure_join(root, "/etc/resolv.conf") == f"{root}/run/resolve/stub.conf"
    assert secure_join(root, "/abs/passwd") == f"{root}/etc/passwd"
    assert secure_join(root, "/climb/passwd") == f"{root}/etc/passwd"
    assert secure_join(root, "/../../etc") == f"{root}/etc"


def test_symlink_loops_are_an_error(root: str) -> None:
    with pytest.raises(SandboxError, match="too many symlinks"):
        secure_join(root, "/loop1/x")
