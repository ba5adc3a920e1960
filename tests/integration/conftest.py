"""Fixtures for the integration suite: every test drives `python -m layerbuild` in a subprocess.

The busybox base image is written once per session by fixtures/make_busybox_base.py (standard
library only, so the base never depends on the code under test) and loaded through the CLI into
a template store; each test gets its own copy of that store, so tests never share state.

The Debian bookworm base (`debian_base`) is made by fixtures/make_debian_base.py with
debootstrap from the Debian package registry, kept in that script's cache directory (one
debootstrap per machine), and loaded once per session into its own template store.

Name: lbtest_user · Scope: session · Depends: root (useradd, /etc/subuid)
    The unprivileged user `lbtest` for rootless builds, created if missing, with subordinate
    ids: the ranges useradd allocated (or that were there), else a new range after every
    other user's. sandbox/conftest.py `as_user` runs code as that user.
Name: lbtest_subids · Scope: session · Depends: lbtest_user
    The first subordinate uid and gid of lbtest's ranges as /etc/subuid and /etc/subgid hold
    them (other users may come first: never assume 100000); container id N > 0 is host id
    first + N - 1.
Name: tun_for_users · Scope: session
    /dev/net/tun usable by every user, for a rootless RUN's default network.
Name: solo_user · Scope: session · Depends: root (useradd)
    The system user `lbsolo`, without subordinate ids: its namespace maps root alone.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import REPO, Layerbuild
from tests.support.cli import make_context as _make_context
from tests.support.cli import unpack as _unpack

MakeContext = Callable[[Path, Mapping[str, str | bytes]], Path]
USER = "lbtest"
SOLO_USER = "lbsolo"  # a user without subordinate ids
SUBID_FILES = ("/etc/subuid", "/etc/subgid")
SUBID_FIRST, SUBID_COUNT = 100000, 65536  # login.defs' SUB_UID_MIN and SUB_UID_COUNT


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


@dataclass(frozen=True)
class DebianBase:
    """Debian bookworm minbase: an OCI layout (tag `latest`), the same root filesystem as a
    plain tar (for `FROM scratch` + `ADD rootfs.tar /`), and a store holding it as
    debian:bookworm."""

    layout: Path
    rootfs_tar: Path
    store: Path

    def new_store(self, root: Path) -> Layerbuild:
        """The CLI over a fresh copy of the store at `root`."""
        shutil.copytree(self.store, root, symlinks=True)
        return Layerbuild(root)


@pytest.fixture(scope="session")
def debian_base(tmp_path_factory: pytest.TempPathFactory) -> DebianBase:
    """Name: debian_base. Scope: session. Depends: root, debootstrap and the Debian package
    registry the first time on a machine (then the script's cache)."""
    work = tmp_path_factory.mktemp("debian")
    layout, rootfs = work / "layout", work / "rootfs.tar"
    script = REPO / "fixtures" / "make_debian_base.py"
    proc = subprocess.run(
        [sys.executable, str(script), str(layout), "--rootfs-tar", str(rootfs)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"{script.name} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    store = work / "store"
    Layerbuild(store).ok("load", layout, "-t", "debian:bookworm")
    return DebianBase(layout, rootfs, store)


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


@pytest.fixture(scope="session")
def lbtest_user() -> pwd.struct_passwd:
    try:
        user = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", USER], check=True, capture_output=True)
        user = pwd.getpwnam(USER)
    for path in SUBID_FILES:
        if subid_range(Path(path), user) is None:  # useradd allocates none without the file
            _append_range(Path(path), USER)
    return user


@dataclass(frozen=True)
class SubIds:
    """The first host ids of a user's subordinate ranges (each at least 65535 long)."""

    uid: int
    gid: int

    def host_uid(self, container_uid: int) -> int:
        return self.uid + container_uid - 1

    def host_gid(self, container_gid: int) -> int:
        return self.gid + container_gid - 1


@pytest.fixture(scope="session")
def lbtest_subids(lbtest_user: pwd.struct_passwd) -> SubIds:
    uid, gid = (subid_range(Path(p), lbtest_user) for p in SUBID_FILES)
    assert uid is not None and gid is not None
    return SubIds(uid[0], gid[0])


def subid_range(path: Path, user: pwd.struct_passwd) -> tuple[int, int] | None:
    """The first range of `user` (by name or uid) in an /etc/subuid-format file that covers a
    container's 65535 ids beyond root, as newuidmap and the rootless namespace take it."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[0] in (user.pw_name, str(user.pw_uid)):
            start, count = int(fields[1]), int(fields[2])
            if count >= SUBID_COUNT - 1:
                return start, count
    return None


def _append_range(path: Path, name: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    ends = [SUBID_FIRST]
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
            ends.append(int(fields[1]) + int(fields[2]))
    with path.open("a", encoding="utf-8") as f:
        if text and not text.endswith("\n"):
            f.write("\n")
        f.write(f"{name}:{max(ends)}:{SUBID_COUNT}\n")


@pytest.fixture(scope="session")
def solo_user() -> pwd.struct_passwd:
    """A user with no range in /etc/subuid (a system user: useradd allocates none)."""
    try:
        return pwd.getpwnam(SOLO_USER)
    except KeyError:
        pass
    subprocess.run(["useradd", "--system", "--no-create-home", SOLO_USER], check=True)
    for path in ("/etc/subuid", "/etc/subgid"):
        with open(path, encoding="ascii") as f:
            assert not any(line.startswith(f"{SOLO_USER}:") for line in f), path
    return pwd.getpwnam(SOLO_USER)


@pytest.fixture(scope="session")
def tun_for_users() -> Iterator[None]:
    """/dev/net/tun usable by every user, as Debian makes it (0666): some test machines
    create it 0600, and then only root can start slirp4netns, RUN's default network.
    Restored afterwards."""
    before = os.stat("/dev/net/tun").st_mode & 0o777
    os.chmod("/dev/net/tun", 0o666)
    yield
    os.chmod("/dev/net/tun", before)
