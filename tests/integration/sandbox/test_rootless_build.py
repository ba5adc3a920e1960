"""A whole `build` as an unprivileged user (user namespace, subordinate ids, userxattr
overlay) gives the same image tree as the same build as root: creates, deletes, hard links,
setuid bits, chown to another id, unicode names, USER, a base-layer directory owned by 1000
copied up by a change below it, a file only its owner (1000) may read. And gc of that rootless
store removes its snapshots, whose files belong to subordinate ids on the host.

The build runs in a forked child that drops to `lbtest` and enters its user namespace, as the
`layerbuild` command does (conftest.py `as_user`); what it needs from the interpreter is
imported first, because the unprivileged user cannot read this machine's Python installation
under /root.
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from layerbuild.engine.executor import build
from layerbuild.engine.options import BuildOptions
from layerbuild.export.load import load
from layerbuild.export.oci_layout import write_oci_layout
from layerbuild.store.gc import prune_cache
from layerbuild.store.layers import remove_tree
from layerbuild.store.layout import Store
from tests.integration.conftest import SubIds
from tests.integration.sandbox.conftest import as_user, chown_tree, user_owned_dir
from tests.support.cli import unpack

pytestmark = [pytest.mark.root, pytest.mark.rootless, pytest.mark.overlay]

DOCKERFILE = """\
FROM busybox
RUN touch /home/app/x
RUN mkdir -p /data/sub && echo one > /data/one && ln /data/one /data/hard \\
 && chmod 4755 /data/one && chmod 1777 /data/sub && rm -rf /var/tmp && touch /data/ünïcødé
RUN rm -rf /data/sub && mkdir /data/sub && echo again > /data/sub/x \\
 && chown 1000:1000 /data/sub/x
COPY a.txt /copied
USER app
RUN id && touch /tmp/mine && echo secret > /tmp/private && chmod 600 /tmp/private
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


@dataclass(frozen=True)
class RootlessBuild:
    home: Path  # lbtest's: the context, the base image, the store
    store: Path
    out: Path  # the image as an OCI layout


@pytest.fixture(scope="module")
def rootless_build(
    lbtest_user: pwd.struct_passwd, busybox_layout: Path, tun_for_users: None
) -> Iterator[RootlessBuild]:
    home = user_owned_dir(lbtest_user, "lbtest-build-")
    context = home / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE)
    (context / "a.txt").write_text("from the context\n")
    shutil.copytree(busybox_layout, home / "busybox")
    chown_tree(home, lbtest_user)
    done = RootlessBuild(home, home / "store", home / "rootless-oci")
    try:
        as_user(lbtest_user, lambda: _build(done.store, context, home / "busybox", done.out))
        yield done
    finally:
        remove_tree(home)


def test_rootless_build_matches_the_root_build(
    rootless_build: RootlessBuild, tmp_path: Path
) -> None:
    root_out, home = tmp_path / "root-oci", rootless_build.home
    _build(tmp_path / "store", home / "ctx", home / "busybox", root_out)

    rootless, rooted = _tree(unpack(rootless_build.out, "1")), _tree(unpack(root_out, "1"))
    assert rootless == rooted
    assert rooted["data/sub/x"][1:3] == (1000, 1000)  # chown inside the step kept
    assert rooted["tmp/mine"][1:3] == (1000, 1000)  # USER app
    assert rooted["home/app"][1:3] == (1000, 1000)  # the base layer's owner, copied up
    assert rooted["tmp/private"][0] & 0o777 == 0o600  # packed, though only 1000 may read it


def test_gc_of_a_rootless_store_removes_subordinate_owned_snapshots(
    lbtest_user: pwd.struct_passwd, lbtest_subids: SubIds, rootless_build: RootlessBuild
) -> None:
    layers = rootless_build.store / "snapshots" / "layers"
    owners = {os.lstat(p).st_uid for p in layers.rglob("*")}
    assert lbtest_subids.host_uid(1000) in owners  # container uid 1000 (home/app)

    def untag_and_prune() -> list[str]:
        store = Store.open(rootless_build.store)
        for name in list(store.refs.list()):
            store.refs.delete(name)
        prune_cache(store, everything=True)
        return sorted(os.listdir(layers))

    assert as_user(lbtest_user, untag_and_prune) == []
    left = [p for p in rootless_build.store.rglob("*") if os.lstat(p).st_uid >= lbtest_subids.uid]
    assert left == []
