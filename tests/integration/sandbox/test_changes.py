"""What a RUN changed, read back from a real overlay upper dir as layer Changes (as root and,
in the `-rootless` variants, as an unprivileged user in its user namespace: conftest.py)."""

from __future__ import annotations

import io
import os
import secrets
import tarfile
from pathlib import Path

import pytest

from layerbuild.digest import Digest
from layerbuild.image.manifest import Layer
from layerbuild.image.tarwriter import write_tar
from tests.integration.sandbox.conftest import Sandbox

pytestmark = [pytest.mark.root, pytest.mark.overlay]


def test_create_modify_delete(sandbox: Sandbox) -> None:
    r = sandbox.run(
        "mkdir -p /new/sub && echo hi > /new/sub/f && echo more >> /etc/group "
        "&& rm /bin/ls && rm -r /home/app"
    )
    assert r.code == 0, r.text
    assert r.paths == [
        ("DIR", "bin"),
        ("WHITEOUT", "bin/ls"),
        ("DIR", "etc"),
        ("FILE", "etc/group"),
        ("DIR", "home"),
        ("WHITEOUT", "home/app"),
        ("DIR", "new"),
        ("DIR", "new/sub"),
        ("FILE", "new/sub/f"),
    ]
    f = r.change("new/sub/f")
    assert f.content is not None
    with f.content() as data:
        assert data.read() == b"hi\n"


def test_deleted_and_recreated_directory_is_opaque(sandbox: Sandbox) -> None:
    r = sandbox.run("rm -rf /usr/sbin && mkdir /usr/sbin && touch /usr/sbin/only")
    assert ("DIR", "usr/sbin") in r.paths
    assert r.paths.index(("OPAQUE", "usr/sbin")) == r.paths.index(("DIR", "usr/sbin")) + 1
    assert ("FILE", "usr/sbin/only") in r.paths
    assert not any(kind == "WHITEOUT" for kind, _ in r.paths)


def test_hard_links_modes_and_odd_names(sandbox: Sandbox) -> None:
    # fuse-overlayfs cannot create names longer than 251 bytes (docs/run.md)
    long_name = "l" * (251 if sandbox.mode == "fuse-overlayfs" else 255)
    r = sandbox.run(
        f"echo x > /a && ln /a /b && cp /bin/busybox /tool && chmod 4755 /tool && "
        f"mkdir -m 1777 /shared && touch /ünïcødé /{long_name} && mkfifo /pipe"
    )
    assert r.code == 0, r.text
    assert r.change("a").kind.name == "FILE"
    assert (r.change("b").kind.name, r.change("b").link) == ("HARDLINK", "a")
    assert r.change("tool").mode == 0o4755
    assert r.change("shared").mode == 0o1777
    assert r.change("ünïcødé").kind.name == "FILE"
    assert r.change(long_name).kind.name == "FILE"
    assert r.change("pipe").kind.name == "FIFO"


def test_metadata_only_changes_copy_the_file_up(sandbox: Sandbox) -> None:
    r = sandbox.run("chmod 600 /etc/passwd && chown 1000:1000 /etc/group && touch -d @5 /etc")
    passwd, group, etc = r.change("etc/passwd"), r.change("etc/group"), r.change("etc")
    assert (passwd.mode, passwd.uid) == (0o600, 0)
    assert (group.uid, group.gid) == (1000, 1000)
    assert etc.mtime == 5
    assert passwd.content is not None
    with passwd.content() as data:
        assert data.read().startswith(b"root:x:0:0:")


def test_a_copied_up_directory_keeps_the_base_layers_owner(sandbox: Sandbox) -> None:
    # busybox's /home/app belongs to 1000:1000; rootless, that is a subordinate id on the host
    r = sandbox.run("touch /home/app/x")
    assert r.paths == [("DIR", "home"), ("DIR", "home/app"), ("FILE", "home/app/x")]
    app = r.change("home/app")
    assert (app.uid, app.gid, app.mode) == (1000, 1000, 0o755)
    assert (r.change("home/app/x").uid, r.change("home/app/x").gid) == (0, 0)


def test_a_file_only_its_owner_may_read_is_packed(sandbox: Sandbox) -> None:
    r = sandbox.run("echo secret > /tmp/private && chmod 600 /tmp/private", uid=1000, gid=1000)
    assert r.code == 0, r.text
    out = io.BytesIO()
    write_tar(r.changes, out)  # what packing the layer reads
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        info = tf.getmember("tmp/private")
        data = tf.extractfile(info)
        assert data is not None and data.read() == b"secret\n"
    assert (info.uid, info.gid, info.mode) == (1000, 1000, 0o600)


def test_injected_etc_files_and_mount_points_never_leak(sandbox: Sandbox) -> None:
    r = sandbox.run(
        "cat /etc/hosts /etc/resolv.conf /etc/hostname >/dev/null; ls /proc >/dev/null"
    )
    assert r.code == 0 and r.changes == []
    # what remains is /etc, copied up to hold the mount points, with the image's attributes
    assert os.listdir(r.step.upper) == ["etc"] and os.listdir(r.step.upper / "etc") == []
    ours, image = os.stat(r.step.upper / "etc"), os.stat(sandbox.busybox.lowerdirs[0] / "etc")
    assert (ours.st_mode, ours.st_uid, ours.st_mtime_ns) == (
        image.st_mode,
        image.st_uid,
        image.st_mtime_ns,
    )


def test_a_committed_upper_is_the_next_steps_lower(sandbox: Sandbox) -> None:
    first = sandbox.run("rm -rf /usr/sbin && mkdir /usr/sbin && rm /bin/ls && echo 1 > /one")
    snaps, store = sandbox.busybox.snapshots, sandbox.busybox.store
    fake = Layer(Digest("sha256:" + secrets.token_hex(32)), Digest("sha256:" + "0" * 64), 0, "x")
    lower = snaps.commit_upper(store, fake, first.step.upper)
    second = sandbox.run(
        "ls -A /usr/sbin; test -e /bin/ls || echo no-ls; cat /one",
        lowerdirs=(lower, *sandbox.busybox.lowerdirs),
    )
    assert second.text == "no-ls\n1\n"
    assert second.changes == []
    _remove(lower)


def _remove(path: Path) -> None:
    from layerbuild.store.layers import remove_tree

    remove_tree(path)
