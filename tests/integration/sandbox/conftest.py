"""Fixtures for the sandbox tests: real namespaces and overlayfs over the busybox fixture.

Name: busybox_lowers · Scope: session · Depends: busybox_layout (tests/integration/conftest.py)
    The busybox image loaded into a session store; its layers as LayerSnapshots lowerdirs.
Name: lbtest_user, lbtest_subids (tests/integration/conftest.py)
    The unprivileged user `lbtest` and its subordinate ids.
    `as_user(user, work)` runs `work` in a forked child that drops to the user (as `su` would)
    and enters the rootless user namespace (sandbox/userns.py) as the `layerbuild` command
    does; the JSON-able result comes back through a pipe. /root is private on the test
    machines, so that child can import nothing new: what it needs is imported beforehand.
Name: userdir · Scope: function · Depends: lbtest_user
    A fresh directory the user owns (pytest's own temporary directories are root's).
Name: rootless_busybox · Scope: session · Depends: busybox_layout, lbtest_user
    The busybox image loaded and unpacked by lbtest inside its user namespace, as a rootless
    store holds it (files of the image's users belong to subordinate ids on the host).
Name: sandbox · Scope: function · Depends: busybox_lowers or rootless_busybox · Params: the
    snapshotters, as root and as lbtest
    `sandbox.run("shell command", **RunSpec fields)` runs one step in a fresh upper dir and
    returns its exit code, output and changes; the step directories are removed afterwards.
    Every test using it runs once per snapshotter (overlay, fuse-overlayfs, copy): the changes
    a step produces must not depend on how its rootfs was made. `sandbox.mode` names it. And
    every such test runs twice: as root, and as lbtest (`-rootless` ids: the whole test body
    runs in an `as_user` child, by `pytest_pyfunc_call` below), so the same assertions hold
    for a rootless build.

Tests marked `root` are skipped (with the reason) when not running as root, tests marked
`overlay` when the kernel has no overlayfs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import shutil
import signal
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from layerbuild.digest import Digest
from layerbuild.export.load import load
from layerbuild.image.changes import Change
from layerbuild.image.manifest import Layer
from layerbuild.sandbox import RunSpec, linux, overlay_changes, run
from layerbuild.sandbox.runner import SNAPSHOTTERS
from layerbuild.sandbox.userns import enter_rootless_userns
from layerbuild.store import Store
from layerbuild.store.images import read_image
from layerbuild.store.layers import LayerSnapshots, StepDirs, remove_tree

PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PR_SET_DUMPABLE = 4


def overlay_available() -> bool:
    with open("/proc/filesystems", encoding="ascii") as f:
        return any(line.split()[-1:] == ["overlay"] for line in f)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here not in item.path.parents:
            continue
        if item.get_closest_marker("root") and os.geteuid() != 0:
            item.add_marker(pytest.mark.skip(reason="needs root (namespaces, mounts, mknod)"))
        if item.get_closest_marker("overlay") and not overlay_available():
            item.add_marker(pytest.mark.skip(reason="the kernel has no overlayfs"))


def _in_child(user: pwd.struct_passwd, work: Callable[[], Any], userns: bool) -> str:
    """The JSON text of {"ok": work()} or {"error": traceback}, `work` run as `user`."""
    try:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
        # a credential change from root leaves the process non-dumpable (its /proc files
        # root's), which a process the user started with exec is not: without subordinate
        # ids it could not write its own /proc/self/uid_map
        linux.prctl(_PR_SET_DUMPABLE, 1)
        os.environ["HOME"] = user.pw_dir
        if userns:
            enter_rootless_userns()
        return json.dumps({"ok": work()})
    except BaseException:  # report anything, never return into pytest
        return json.dumps({"error": traceback.format_exc()})


def as_user(user: pwd.struct_passwd, work: Callable[[], Any], *, userns: bool = True) -> Any:
    """Run `work` in a forked child as `user` (in its user namespace unless `userns` is
    False); its JSON-able result. A failure fails the test with the child's traceback."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        out = _in_child(user, work, userns).encode()
        while out:
            out = out[os.write(w, out) :]
        os._exit(0)
    os.close(w)
    try:
        with os.fdopen(r, "rb") as f:
            data = f.read()
    except BaseException:  # a timeout in the parent: the child must not outlive the test
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.waitpid(pid, 0)
    result = json.loads(data) if data else {"error": "the child died without a word"}
    if "error" in result:
        pytest.fail(f"as {user.pw_name}:\n{result['error']}", pytrace=False)
    return result["ok"]


def user_owned_dir(user: pwd.struct_passwd, prefix: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix=prefix))
    os.chown(d, user.pw_uid, user.pw_gid)
    return d


def chown_tree(root: Path, user: pwd.struct_passwd) -> None:
    for path in [root, *root.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)


@pytest.fixture
def userdir(lbtest_user: pwd.struct_passwd) -> Iterator[Path]:
    """A directory the user owns (pytest's own tmp dirs are private to root)."""
    d = user_owned_dir(lbtest_user, "lbtest-")
    yield d
    remove_tree(d)


@dataclass(frozen=True)
class Busybox:
    store: Store
    layers: tuple[Layer, ...]
    snapshots: LayerSnapshots
    lowerdirs: tuple[Path, ...]
    user: pwd.struct_passwd | None = None  # rootless: the tests run as this user


def _busybox_layers(store: Store, layout: Path) -> tuple[Layer, ...]:
    (_, desc), *_ = load(store, layout)
    _, manifest, config = read_image(store, desc)
    return tuple(
        Layer(diff, d.digest, d.size, d.media_type)
        for diff, d in zip(config.diff_ids, manifest.layers, strict=True)
    )


@pytest.fixture(scope="session")
def busybox_lowers(busybox_layout: Path, tmp_path_factory: pytest.TempPathFactory) -> Busybox:
    store = Store.open(tmp_path_factory.mktemp("sandbox") / "store")
    layers = _busybox_layers(store, busybox_layout)
    snaps = LayerSnapshots(store.root, rootless=False)
    return Busybox(store, layers, snaps, tuple(snaps.lowerdirs(store, layers)))


@pytest.fixture(scope="session")
def fuse_for_users() -> Iterator[None]:
    """/dev/fuse usable by every user, as Debian's udev rule makes it (0666): some test
    machines create it 0600, and then only root can run fuse-overlayfs. Restored afterwards."""
    before = os.stat("/dev/fuse").st_mode & 0o777
    os.chmod("/dev/fuse", 0o666)
    yield
    os.chmod("/dev/fuse", before)


@pytest.fixture(scope="session")
def rootless_busybox(busybox_layout: Path, lbtest_user: pwd.struct_passwd) -> Iterator[Busybox]:
    home = user_owned_dir(lbtest_user, "lbtest-sandbox-")
    shutil.copytree(busybox_layout, home / "busybox")  # root's pytest directory is private
    chown_tree(home, lbtest_user)

    def unpack() -> list[list[str]]:
        store = Store.open(home / "store")
        layers = _busybox_layers(store, home / "busybox")
        lowers = LayerSnapshots(store.root).lowerdirs(store, layers)
        described = ([str(x.diff_id), str(x.digest), x.media_type] for x in layers)
        return [[str(p) for p in lowers], *described]

    try:
        lowers, *ids = as_user(lbtest_user, unpack)
        store = Store(home / "store")  # not Store.open: root must create nothing in it
        layers = tuple(
            Layer(Digest(diff), Digest(digest), store.content.size(Digest(digest)), media_type)
            for diff, digest, media_type in ids
        )
        snaps = LayerSnapshots(store.root, rootless=True)
        yield Busybox(store, layers, snaps, tuple(Path(p) for p in lowers), lbtest_user)
    finally:
        remove_tree(home)


@dataclass
class Result:
    code: int
    output: bytes
    changes: list[Change]
    step: StepDirs

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    @property
    def paths(self) -> list[tuple[str, str]]:
        return [(c.kind.name, c.path) for c in self.changes]

    def change(self, path: str) -> Change:
        return next(c for c in self.changes if c.path == path)


@dataclass
class Sandbox:
    busybox: Busybox
    mode: str = "overlay"
    steps: list[StepDirs] = field(default_factory=list)

    def spec(self, script: str, **fields: object) -> RunSpec:
        step = self.busybox.snapshots.prepare_step()
        self.steps.append(step)
        base = RunSpec(
            argv=("/bin/sh", "-c", script),
            env=(PATH,),
            cwd="/",
            uid=0,
            gid=0,
            lowerdirs=self.busybox.lowerdirs,
            upperdir=step.upper,
            workdir=step.work,
            network="none",  # the filesystem tests need no network; test_network.py does
        )
        return dataclasses.replace(base, **fields)  # type: ignore[arg-type]

    def run(self, script: str, **fields: object) -> Result:
        spec = self.spec(script, **fields)
        out: list[bytes] = []
        code = run(spec, on_output=out.append, snapshotter=self.mode)
        changes = list(overlay_changes(spec.upperdir, lowerdirs=spec.lowerdirs))
        step = self.steps[-1]
        return Result(code, b"".join(out), changes, step)


_SANDBOXES = [
    pytest.param(
        (mode, who),
        id=mode if who == "root" else f"{mode}-rootless",
        marks=[pytest.mark.rootless] if who == "rootless" else [],
    )
    for who in ("root", "rootless")
    for mode in SNAPSHOTTERS
]


@pytest.fixture(params=_SANDBOXES)
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """Name: sandbox. Scope: test, once per snapshotter mode (overlay, fuse-overlayfs, copy)
    as root, and once per mode as lbtest in its user namespace.
    Depends: busybox_lowers or rootless_busybox; fuse-overlayfs installed (CI installs it:
    a missing one fails)."""
    mode, who = request.param
    if mode == "fuse-overlayfs":
        assert shutil.which(mode), "fuse-overlayfs is not installed (Debian package)"
        if who == "rootless":
            request.getfixturevalue("fuse_for_users")
    if who == "rootless":
        request.getfixturevalue("tun_for_users")
    box = request.getfixturevalue("rootless_busybox" if who == "rootless" else "busybox_lowers")
    yield from _sandbox(box, mode)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a test whose sandbox is rootless in an `as_user` child: the whole body, so that
    every assertion is about what the unprivileged user gets."""
    box = pyfuncitem.funcargs.get("sandbox")
    if not isinstance(box, Sandbox) or box.busybox.user is None:
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}

    def body() -> None:
        try:
            pyfuncitem.obj(**kwargs)
        finally:
            for step in box.steps:  # made in this child: the fixture's teardown cannot see them
                box.busybox.snapshots.discard(step)

    as_user(box.busybox.user, body)
    return True


@pytest.fixture
def overlay_sandbox(busybox_lowers: Busybox) -> Iterator[Sandbox]:
    """Name: overlay_sandbox. Scope: test. The kernel-overlay mode only, for the tests that
    are about the kernel's overlayfs itself."""
    yield from _sandbox(busybox_lowers, "overlay")


def _sandbox(busybox_lowers: Busybox, mode: str) -> Iterator[Sandbox]:
    box = Sandbox(busybox_lowers, mode)
    yield box
    for step in box.steps:
        busybox_lowers.snapshots.discard(step)


def mountinfo() -> list[str]:
    """The mount points of this mount namespace (the host's, for the test process)."""
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return sorted(line.split()[4] for line in f)
