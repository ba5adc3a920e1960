"""A whole `build` as an unprivileged user (user namespace, subordinate ids, userxattr
overlay) gives the same image tree as the same build as root: creates, deletes, hard links,
setuid bits, chown to another id, unicode names, USER.

The build runs in a forked child that drops to `lbtest` (tests/integration/sandbox/
test_rootless.py's fixtures); what it needs from the interpreter is imported first, because
the unprivileged user cannot read this machine's Python installation under /root.
"""

from __future__ import annotations

import concurrent.futures.thread  # noqa: F401  (imported lazily by ThreadPoolExecutor)
import encodings.ascii
import encodings.idna
import encodings.latin_1  # noqa: F401
import hashlib
import os
import pwd
import shutil
from pathlib import Path

import pytest

from layerbuild.build.executor import build
from layerbuild.build.options import BuildOptions
from layerbuild.export.load import load
from layerbuild.export.oci_layout import write_oci_layout
from layerbuild.store.layout import Store
from tests.integration.sandbox.test_rootless import as_user, lbtest_user, userdir
from tests.support.cli import unpack

pytestmark = [pytest.mark.root, pytest.mark.rootless, pytest.mark.overlay]
__all__ = ["lbtest_user", "userdir"]

DOCKERFILE = """\
FROM busybox
RUN mkdir -p /data/sub && echo one > /data/one && ln /data/one /data/hard \\
 && chmod 4755 /data/one && chmod 1777 /data/sub && rm -rf /home && touch /data/ünïcødé
RUN rm -rf /data/sub && mkdir /data/sub && echo again > /data/sub/x \\
 && chown 1000:1000 /data/sub/x
COPY a.txt /copied
USER app
RUN id && touch /tmp/mine
"""


def _build(root: Path, context: Path, base: Path, out: Path) -> str:
    store = Store.open(root)
    for _, desc in load(store, base):
        store.refs.set("busybox:latest", desc)
    result = build(store, BuildOptions(context=context, tags=("t:1",), registry=None))
    write_oci_layout(store, result.descriptor, out, ["t:1"])
    return str(result.digest)


def _tree(root: Path) -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            data = b""
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    data = f.read()
            link = os.readlink(path) if os.path.islink(path) else ""
            out[os.path.relpath(path, root)] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                hashlib.sha256(data).hexdigest(),
                link,
            )
    return out


def test_rootless_build_matches_the_root_build(
    lbtest_user: pwd.struct_passwd, userdir: Path, busybox_layout: Path, tmp_path: Path
) -> None:
    context = userdir / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE)
    (context / "a.txt").write_text("from the context\n")
    base = userdir / "busybox"
    shutil.copytree(busybox_layout, base)
    for path in [userdir, *userdir.rglob("*")]:
        os.chown(path, lbtest_user.pw_uid, lbtest_user.pw_gid, follow_symlinks=False)

    rootless_out = userdir / "rootless-oci"
    as_user(lbtest_user, lambda: _build(userdir / "store", context, base, rootless_out))
    root_out = tmp_path / "root-oci"
    _build(tmp_path / "store", context, base, root_out)

    rootless, rooted = _tree(unpack(rootless_out, "1")), _tree(unpack(root_out, "1"))
    assert rootless == rooted
    assert rooted["data/sub/x"][1:3] == (1000, 1000)  # chown inside the step kept
    assert rooted["tmp/mine"][1:3] == (1000, 1000)  # USER app
