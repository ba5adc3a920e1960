"""The sandbox as an unprivileged user: a user namespace with subordinate ids, userxattr overlay.

Name: lbtest_user · Scope: session · Depends: root (useradd, /etc/subuid)
    The unprivileged user `lbtest` with the subordinate range 100000:65536, created if missing.

Each test forks, drops to lbtest (setgroups/setgid/setuid, as `su` would) and runs the steps in
that child; results come back as JSON through a pipe. The lower snapshot is unpacked by lbtest
too, as a rootless store would hold it.
"""

from __future__ import annotations

import gzip
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from layerbuild.sandbox import RunSpec, overlay_changes, run
from layerbuild.sandbox.userns import caller_id_map
from layerbuild.store.layers import remove_tree
from layerbuild.store.unpack import apply_layer
from tests.integration.sandbox.conftest import PATH, mountinfo

pytestmark = [pytest.mark.root, pytest.mark.rootless, pytest.mark.overlay]
USER = "lbtest"


@pytest.fixture(scope="session")
def lbtest_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        pass
    subprocess.run(["useradd", "-m", USER], check=True, capture_output=True)
    for path in ("/etc/subuid", "/etc/subgid"):
        with open(path, "a", encoding="ascii") as f:
            f.write(f"{USER}:100000:65536\n")
    return pwd.getpwnam(USER)


def as_user(user: pwd.struct_passwd, work: Callable[[], Any]) -> Any:
    """Run `work` in a forked child as `user`; its JSON-able result (or raised error text)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            os.environ["HOME"] = user.pw_dir
            out = json.dumps({"ok": work()})
        except BaseException as e:  # report anything, never return into pytest
            out = json.dumps({"error": f"{type(e).__name__}: {e}"})
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    result = json.loads(data)
    assert "error" not in result, result["error"]
    return result["ok"]


@pytest.fixture
def userdir(lbtest_user: pwd.struct_passwd) -> Iterator[Path]:
    """A directory the user owns (pytest's own tmp dirs are private to root)."""
    d = Path(tempfile.mkdtemp(prefix="lbtest-"))
    os.chown(d, lbtest_user.pw_uid, lbtest_user.pw_gid)
    yield d
    remove_tree(d)


def _busybox_blob(layout: Path) -> Path:
    index = json.loads((layout / "index.json").read_text())
    manifest_hex = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_hex).read_text())
    layer_hex: str = manifest["layers"][0]["digest"].split(":")[1]
    return layout / "blobs" / "sha256" / layer_hex


def _steps(base: Path, blob: Path, scripts: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """As the unprivileged user: unpack busybox, run each (script, uid) in a fresh upper."""
    lower = base / "lower"
    lower.mkdir()
    with gzip.open(blob) as tar:
        apply_layer(tar, lower, rootless=True, whiteouts="overlay")  # type: ignore[arg-type]
    results = []
    for i, (script, uid) in enumerate(scripts):
        upper, work = base / f"upper{i}", base / f"work{i}"
        upper.mkdir()
        work.mkdir()
        out: list[bytes] = []
        spec = RunSpec(("/bin/sh", "-c", script), (PATH,), "/", uid, uid, (lower,), upper, work)
        code = run(spec, on_output=out.append)
        changes = overlay_changes(upper, lowerdirs=(lower,), ids=caller_id_map())
        results.append(
            {
                "code": code,
                "out": b"".join(out).decode(errors="replace"),
                "changes": [[c.kind.name, c.path, c.uid, c.gid, c.mode] for c in changes],
            }
        )
    return results


def test_rootless_steps_run_and_keep_ownership(
    lbtest_user: pwd.struct_passwd, userdir: Path, busybox_layout: Path
) -> None:
    before = mountinfo()
    blob = userdir / "busybox.tar.gz"  # the layout is in root's private pytest directory
    shutil.copyfile(_busybox_blob(busybox_layout), blob)
    results = as_user(
        lbtest_user,
        lambda: _steps(
            userdir,
            blob,
            [
                ("id -u; echo $$; hostname; cat /proc/net/dev | tail -n +3 | cut -d: -f1", 0),
                (
                    "mkdir /d && touch /d/f && chown 1000:1000 /d/f && "
                    "rm -rf /usr/sbin && mkdir /usr/sbin && rm /bin/ls",
                    0,
                ),
                ("id -u; touch /tmp/mine", 1000),
                ("exit 7", 0),
            ],
        ),
    )
    info, changed, user, failed = results
    assert info["code"] == 0 and info["out"].split() == ["0", "1", "layerbuild", "lo"]
    assert info["changes"] == []
    assert changed["code"] == 0, changed["out"]
    kinds = {(k, p): (uid, gid) for k, p, uid, gid, _ in changed["changes"]}
    assert kinds[("FILE", "d/f")] == (1000, 1000)  # chown to another id works (subuid map)
    assert ("OPAQUE", "usr/sbin") in kinds  # user.overlay.opaque, read back
    assert ("WHITEOUT", "bin/ls") in kinds
    assert user["out"].split() == ["1000"]
    assert ["FILE", "tmp/mine", 1000, 1000, 0o644] in user["changes"]
    assert failed["code"] == 7
    assert mountinfo() == before
