"""Rootless specifics: the user namespace a non-root process enters at startup, owners beyond
its map, and a user without subordinate ids.

What every RUN does is checked as lbtest too, by the `-rootless` variants of the tests using
the `sandbox` fixture (conftest.py); a whole build is compared with root's in
test_rootless_build.py. Each test here forks, drops to the user and enters its namespace
(`as_user`); results come back as JSON.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pwd
import shutil
import tarfile
from pathlib import Path

import pytest

from layerbuild import cli, privilege
from layerbuild.engine import runmounts_prepare
from layerbuild.errors import BuildError, SandboxError, UnmappedOwnerError
from layerbuild.sandbox import RunSpec, overlay_changes, run
from layerbuild.sandbox.userns import enter_rootless_userns
from layerbuild.store.layers import remove_tree
from layerbuild.store.unpack import apply_layer
from tests.integration.conftest import SubIds
from tests.integration.sandbox.conftest import PATH, as_user, mountinfo, user_owned_dir

pytestmark = [pytest.mark.root, pytest.mark.rootless, pytest.mark.overlay]


def test_entering_makes_the_caller_root_of_a_full_map(
    lbtest_user: pwd.struct_passwd, lbtest_subids: SubIds
) -> None:
    def inside() -> list[object]:
        with open("/proc/self/uid_map", encoding="ascii") as f:
            uid_map = [line.split() for line in f]
        with open("/proc/self/gid_map", encoding="ascii") as f:
            uid_map += [line.split() for line in f]
        again = enter_rootless_userns()  # already uid 0: nothing to do
        return [os.getuid(), os.getgid(), os.getgroups(), uid_map, again, privilege.rootless()]

    uid, gid, groups, uid_map, again, rootless = as_user(lbtest_user, inside)
    assert (uid, gid, groups) == (0, 0, [])
    assert uid_map == [
        ["0", str(lbtest_user.pw_uid), "1"],
        ["1", str(lbtest_subids.uid), "65535"],
        ["0", str(lbtest_user.pw_gid), "1"],
        ["1", str(lbtest_subids.gid), "65535"],
    ]
    assert again is None and rootless is True
    assert privilege.privileged()  # the test process itself is still real root


def test_the_command_enters_the_namespace_first(
    lbtest_user: pwd.struct_passwd, userdir: Path
) -> None:
    def command() -> list[object]:
        cli.main.main(["--root", str(userdir / "store"), "images"], standalone_mode=False)
        with open("/proc/self/uid_map", encoding="ascii") as f:
            return [os.getuid(), f.read().split()]

    uid, uid_map = as_user(lbtest_user, command, userns=False)
    assert uid == 0 and uid_map[:3] == ["0", str(lbtest_user.pw_uid), "1"]
    store = userdir / "store"
    assert os.stat(store).st_uid == lbtest_user.pw_uid  # made as root of the namespace


def test_an_owner_beyond_the_map_is_a_clear_error(
    lbtest_user: pwd.struct_passwd, lbtest_subids: SubIds, userdir: Path
) -> None:
    tar = _owned_tar([("ok", 65535), ("far", 0), ("far/away", 70000)])

    def unpack() -> list[str]:
        try:
            apply_layer(io.BytesIO(tar), userdir / "root")
        except UnmappedOwnerError as e:
            return [e.message, e.hint or ""]
        return []

    (userdir / "root").mkdir()
    os.chown(userdir / "root", lbtest_user.pw_uid, lbtest_user.pw_gid)
    message, hint = as_user(lbtest_user, unpack)
    assert "'far/away'" in message and "70000:70000" in message and "0..65535" in message
    assert "/etc/subuid" in hint and "70001" in hint
    assert os.stat(userdir / "root" / "ok").st_uid == lbtest_subids.host_uid(65535)  # the last


def test_without_subordinate_ids_root_alone_is_mapped(
    solo_user: pwd.struct_passwd, busybox_layout: Path, tun_for_users: None
) -> None:
    base = user_owned_dir(solo_user, "lbsolo-")
    blob = base / "busybox.tar.gz"
    shutil.copyfile(_busybox_blob(busybox_layout), blob)
    os.chown(blob, solo_user.pw_uid, solo_user.pw_gid)

    def steps() -> dict[str, object]:
        lower, notes = base / "lower", []
        lower.mkdir()
        with gzip.open(blob) as tar:
            apply_layer(tar, lower, whiteouts="overlay", note=notes.append)  # type: ignore[arg-type]
        home = os.stat(lower / "home" / "app")
        results: dict[str, object] = {"notes": notes, "home": [home.st_uid, home.st_gid]}
        for name, uid in (("root", 0), ("app", 1000)):
            upper, work = base / f"upper-{name}", base / f"work-{name}"
            upper.mkdir()
            work.mkdir()
            argv = ("/bin/sh", "-c", "id -u; id -G; touch /made")
            spec = RunSpec(argv, (PATH,), "/", uid, uid, (lower,), upper, work)
            out: list[bytes] = []
            try:
                code = run(spec, on_output=out.append)
            except SandboxError as e:
                results[name] = str(e)
                continue
            changes = [(c.path, c.uid) for c in overlay_changes(upper, lowerdirs=(lower,))]
            results[name] = [code, b"".join(out).decode(), changes]
        return results

    try:
        got = as_user(solo_user, steps)
    finally:
        remove_tree(base)
    notes = got["notes"]
    assert len(notes) == 1 and "home/app: owner 1000:1000 not kept" in notes[0]
    assert got["home"] == [0, 0]  # the files stay root's (the caller's, on the host)
    assert got["root"] == [0, "0\n0\n", [["made", 0]]]
    assert "user 1000:1000 is not mapped" in str(got["app"])


def test_a_rootless_step_leaves_no_mount_behind(
    lbtest_user: pwd.struct_passwd,
    userdir: Path,
    busybox_layout: Path,
    tun_for_users: None,
) -> None:
    before = mountinfo()
    blob = userdir / "busybox.tar.gz"
    shutil.copyfile(_busybox_blob(busybox_layout), blob)
    os.chown(blob, lbtest_user.pw_uid, lbtest_user.pw_gid)

    def step() -> int:
        lower, upper, work = userdir / "lower", userdir / "upper", userdir / "work"
        for d in (lower, upper, work):
            d.mkdir()
        with gzip.open(blob) as tar:
            apply_layer(tar, lower, whiteouts="overlay")  # type: ignore[arg-type]
        spec = RunSpec(("/bin/sh", "-c", "exit 7"), (PATH,), "/", 0, 0, (lower,), upper, work)
        return run(spec)

    assert as_user(lbtest_user, step) == 7
    assert mountinfo() == before


def _owned_tar(entries: list[tuple[str, int]]) -> bytes:
    """A layer of files (directories when something lies below) owned by uid = gid."""
    names = [n for n, _ in entries]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, owner in entries:
            info = tarfile.TarInfo(name)
            info.uid = info.gid = owner
            if any(other.startswith(name + "/") for other in names):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info.size = 1
                tf.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()


def _busybox_blob(layout: Path) -> Path:
    index = json.loads((layout / "index.json").read_text())
    manifest_hex = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_hex).read_text())
    layer_hex: str = manifest["layers"][0]["digest"].split(":")[1]
    return layout / "blobs" / "sha256" / layer_hex


def test_a_cache_mount_owner_beyond_the_map_is_a_clear_error(
    lbtest_user: pwd.struct_passwd, lbtest_subids: SubIds, userdir: Path
) -> None:
    """RUN --mount=type=cache,uid=70000 cannot be given to an id the namespace does not map:
    the build says so instead of failing with a bare EINVAL."""
    target = userdir / "cache"
    target.mkdir()
    os.chown(target, lbtest_user.pw_uid, lbtest_user.pw_gid)

    def own() -> list[str]:
        runmounts_prepare._own(str(target), 1000, 1000)  # mapped: fine
        try:
            runmounts_prepare._own(str(target), 70000, 70000)
        except BuildError as e:
            return [e.message, e.hint or ""]
        return []

    message, hint = as_user(lbtest_user, own)
    assert "uid=70000" in message and "not mapped" in message
    assert "/etc/subuid" in hint
    assert (os.stat(target).st_uid, os.stat(target).st_gid) == (
        lbtest_subids.host_uid(1000),
        lbtest_subids.host_gid(1000),
    )


def test_failing_id_mappers_fall_back_to_the_single_id_map(
    lbtest_user: pwd.struct_passwd, userdir: Path
) -> None:
    """newuidmap/newgidmap that refuse (here: scripts first on PATH that exit 1, as a missing
    setuid bit would make them) leave the process root of a single-id namespace, with a
    warning that says what is lost, rather than in a namespace without any map."""
    tools = userdir / "bin"
    tools.mkdir()
    for name in ("newuidmap", "newgidmap"):
        script = tools / name
        script.write_text(
            "#!/bin/sh\necho 'write to uid_map failed: Operation not permitted' >&2\nexit 1\n"
        )
        script.chmod(0o755)
    os.chown(tools, lbtest_user.pw_uid, lbtest_user.pw_gid)

    def enter() -> list[object]:
        os.environ["PATH"] = f"{tools}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        warnings: list[str] = []
        enter_rootless_userns(on_warning=warnings.append)
        with open("/proc/self/uid_map", encoding="ascii") as f:
            uid_map = f.read().split()
        (userdir / "made-inside").write_text("x")  # the map works: files can be made
        return [os.getuid(), uid_map, warnings]

    uid, uid_map, warnings = as_user(lbtest_user, enter, userns=False)
    assert uid == 0 and uid_map == ["0", str(lbtest_user.pw_uid), "1"]
    assert len(warnings) == 1 and "mapping subordinate ids failed" in warnings[0]
    assert "not permitted" in warnings[0]
    assert os.stat(userdir / "made-inside").st_uid == lbtest_user.pw_uid
