"""A RUN of another architecture as an unprivileged user: QEMU's binfmt_misc handler, registered
with the fix-binary flag (F), is opened at registration, so the interpreter is found from
inside the rootless build's user and mount namespaces too, where /usr/bin/qemu-aarch64-static
of the host is not visible.

The build runs in a forked child that drops to `lbtest` and enters its user namespace
(tests/integration/sandbox/conftest.py `as_user`); what it needs of the interpreter is imported
first, since that user cannot read this machine's Python installation under /root.
"""

from __future__ import annotations

import concurrent.futures.thread  # noqa: F401  (imported lazily by ThreadPoolExecutor)
import encodings.ascii
import encodings.idna
import encodings.latin_1  # noqa: F401
import pwd
import shutil
from pathlib import Path

import pytest

import layerbuild.engine.runmounts_prepare  # (imported by the RUN step)
import layerbuild.sandbox.binfmt  # noqa: F401  (imported by the RUN of another architecture)
from layerbuild.engine.executor import build
from layerbuild.engine.options import BuildOptions
from layerbuild.export.load import load
from layerbuild.export.oci_layout import write_oci_layout
from layerbuild.image.descriptor import Platform
from layerbuild.store.layers import remove_tree
from layerbuild.store.layout import Store
from tests.integration.sandbox.conftest import as_user, chown_tree, user_owned_dir
from tests.support.cli import unpack

pytestmark = [pytest.mark.root, pytest.mark.rootless, pytest.mark.overlay]

ARM64 = Platform(os="linux", architecture="arm64")


def _build(root: Path, context: Path, base: Path, out: Path) -> str:
    store = Store.open(root)
    for _, desc in load(store, base):
        store.refs.set("mbusybox:latest", desc)
    options = BuildOptions(
        context=context, tags=("t:1",), registry=None, platform=ARM64, network="none"
    )
    result = build(store, options)
    write_oci_layout(store, result.descriptor, out, ["t:1"])
    return str(result.digest)


def test_an_arm64_run_as_an_unprivileged_user(
    lbtest_user: pwd.struct_passwd,
    multiplatform_layout: Path,
    qemu_binfmt: None,
    tun_for_users: None,
) -> None:
    home = user_owned_dir(lbtest_user, "lbtest-arm64-")
    try:
        context = home / "ctx"
        context.mkdir()
        dockerfile = "FROM mbusybox\nRUN uname -m > /arch && id -u > /uid\n"
        (context / "Dockerfile").write_text(dockerfile)
        shutil.copytree(multiplatform_layout, home / "base")
        chown_tree(home, lbtest_user)
        out = home / "oci"
        as_user(lbtest_user, lambda: _build(home / "store", context, home / "base", out))
        root = unpack(out, "1")
        assert (root / "arch").read_text() == "aarch64\n"
        assert (root / "uid").read_text() == "0\n"  # root of its user namespace, as in any RUN
    finally:
        remove_tree(home)
