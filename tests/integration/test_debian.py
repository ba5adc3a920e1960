"""The Dockerfiles people write for Debian-, Python- and Node-based applications, built through
the CLI with no network flag (RUN's default network) from the Debian bookworm base
(fixtures/make_debian_base.py), as root and as an unprivileged user with subordinate ids.

The package registries are reached as a user behind a TLS-intercepting proxy reaches them: the
host's CA bundle goes in as a build secret (`--secret id=ca,src=...`) that pip (`--cert`) and
npm (`--cafile`) are pointed at, never by turning verification off; without a proxy the bundle
holds the registries' usual CAs and the same builds work. apt fetches over plain http from the
Debian mirror and checks signatures itself.

The rootless builds run `layerbuild`'s own command function in a forked child that drops to
`lbtest` (sandbox/conftest.py `as_user`, without entering the namespace: the command does that
first, as it does when a user runs it): this machine's Python lives under a private /root, so
an unprivileged `python -m layerbuild` could not start. Everything the command may import is
imported beforehand.
"""

from __future__ import annotations

import concurrent.futures.thread  # noqa: F401  (imported lazily by ThreadPoolExecutor)
import encodings.ascii
import encodings.idna
import encodings.latin_1  # noqa: F401
import importlib
import os
import pkgutil
import pwd
import re
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

import layerbuild
from layerbuild import cli
from layerbuild.store.layers import remove_tree
from tests.integration.conftest import DebianBase
from tests.integration.sandbox.conftest import as_user, chown_tree, user_owned_dir
from tests.support.cli import Layerbuild, make_context

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.slow]

CA = "/etc/ssl/certs/ca-certificates.crt"
SECRET = ("--secret", f"id=ca,src={CA}")
APT_CACHE = (
    "--mount=type=cache,target=/var/cache/apt,sharing=locked "
    "--mount=type=cache,target=/var/lib/apt/lists,sharing=locked"
)
APP = """\
FROM debian:bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates
RUN --mount=type=secret,id=ca python3 -m venv /venv \\
 && /venv/bin/pip install --no-cache-dir --cert /run/secrets/ca six==1.16.0
RUN useradd -m app
USER app
COPY --chown=app:app app.py /home/app/
WORKDIR /home/app
CMD ["/venv/bin/python", "app.py"]
"""
APP_PY = """\
import os, pwd, six
me = pwd.getpwuid(os.getuid()).pw_name
print(f"hello from {me} in {os.getcwd()} with six {six.__version__}")
"""
NODE = f"""\
FROM debian:bookworm
RUN {APT_CACHE} apt-get update && apt-get install -y --no-install-recommends nodejs npm
WORKDIR /srv
RUN --mount=type=secret,id=ca npm install --cafile /run/secrets/ca --no-audit --no-fund \\
    is-number@7.0.0
CMD ["node", "-e", "console.log('is-number', require('is-number')('5'))"]
"""


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


class Cli(Protocol):
    """`layerbuild --root STORE ...` as root or as lbtest; `work` is a directory it can read."""

    @property
    def work(self) -> Path: ...

    @property
    def store(self) -> Path: ...

    def __call__(self, *args: str | os.PathLike[str]) -> Outcome: ...


def ok(lb: Cli, *args: str | os.PathLike[str]) -> Outcome:
    out = lb(*args)
    if out.code != 0:
        pytest.fail(
            f"layerbuild {' '.join(map(str, args))} exited {out.code}\n"
            f"--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}"
        )
    return out


def build(lb: Cli, ctx: Path, *args: str | os.PathLike[str]) -> Outcome:
    return ok(lb, "build", "--progress", "plain", *SECRET, *args, ctx)


@dataclass(frozen=True)
class RootCli:
    work: Path
    store: Path

    def __call__(self, *args: str | os.PathLike[str]) -> Outcome:
        proc = Layerbuild(self.store)(*args, timeout=600)
        return Outcome(proc.returncode, proc.stdout, proc.stderr)


@dataclass(frozen=True)
class UserCli:
    """The command run as `user`, its output through files in the user's `work`."""

    work: Path
    store: Path
    user: pwd.struct_passwd

    def __call__(self, *args: str | os.PathLike[str]) -> Outcome:
        out, err = self.work / "stdout", self.work / "stderr"
        argv = ["--root", str(self.store), *map(str, args)]

        def command() -> list[object]:
            # pytest's capture objects stand in for sys.std*: the command gets real files,
            # and so do the processes it starts (fds 0-2)
            with open(os.devnull) as i, out.open("w") as o, err.open("w") as e:
                for fd, f in ((0, i), (1, o), (2, e)):
                    os.dup2(f.fileno(), fd)
                sys.stdin, sys.stdout, sys.stderr = i, o, e
                try:
                    cli.main.main(argv, standalone_mode=False)
                    code = 0
                except SystemExit as exit:
                    code = exit.code if isinstance(exit.code, int) else 1
            return [code, out.read_text(errors="replace"), err.read_text(errors="replace")]

        code, stdout, stderr = as_user(self.user, command, userns=False)
        return Outcome(code, stdout, stderr)


def import_everything() -> None:
    """Every module of layerbuild, and so what they import: the child that drops to an
    unprivileged user cannot read this Python installation to import anything new."""
    for module in pkgutil.walk_packages(layerbuild.__path__, "layerbuild."):
        if module.name != "layerbuild.__main__":
            importlib.import_module(module.name)


def user_cli(base: DebianBase, user: pwd.struct_passwd, prefix: str) -> UserCli:
    """A rootless store of `user`'s with the Debian base loaded (as the user: its files
    belong to the user's subordinate ids)."""
    import_everything()
    work = user_owned_dir(user, prefix)
    shutil.copytree(base.layout, work / "debian")
    chown_tree(work, user)
    lb = UserCli(work, work / "store", user)
    ok(lb, "load", work / "debian", "-t", "debian:bookworm")
    return lb


@pytest.fixture(scope="module", params=["root", "rootless"])
def lb(
    request: pytest.FixtureRequest,
    debian_base: DebianBase,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cli]:
    """A store with the Debian base, as root or as lbtest, shared by the module's tests."""
    if request.param == "root":
        work = tmp_path_factory.mktemp("debian-root")
        yield RootCli(work, debian_base.new_store(work / "store").store)
        return
    user = request.getfixturevalue("lbtest_user")
    request.getfixturevalue("tun_for_users")
    rootless = user_cli(debian_base, user, "lbtest-debian-")
    try:
        yield rootless
    finally:
        remove_tree(rootless.work)


def context(lb: Cli, name: str, files: dict[str, str]) -> Path:
    ctx = make_context(lb.work, files, name)
    if isinstance(lb, UserCli):
        chown_tree(ctx, lb.user)
    return ctx


@pytest.fixture(scope="module")
def app(lb: Cli) -> Cli:
    build(lb, context(lb, "app", {"Dockerfile": APP, "app.py": APP_PY}), "-t", "app:1")
    return lb


def test_a_python_app_on_debian_runs_as_the_user_it_made(app: Cli) -> None:
    """apt, a venv with a package from PyPI, useradd + USER, COPY --chown, then run."""
    assert ok(app, "run", "app:1").stdout == "hello from app in /home/app with six 1.16.0\n"
    owners = ok(app, "run", "app:1", "stat", "-c", "%U:%G %a", "/home/app/app.py")
    assert owners.stdout == "app:app 644\n"
    assert ok(app, "run", "app:1", "id", "-un").stdout == "app\n"


def _debs(store: Path) -> list[str]:
    return sorted(p.name for p in (store / "cache" / "mounts").glob("*/archives/*.deb"))


def test_apt_keeps_its_archives_in_a_cache_mount_between_builds(lb: Cli) -> None:
    """No docker-clean in a debootstrap image: apt leaves the .debs it fetched in
    /var/cache/apt, here a cache mount, and a later build whose step changed fetches nothing."""
    step = f"RUN {APT_CACHE} apt-get update && apt-get install -y --no-install-recommends jq"
    first = context(lb, "apt1", {"Dockerfile": f"FROM debian:bookworm\n{step}\n"})
    out = build(lb, first, "-t", "jq:1")
    assert re.search(r"Need to get [1-9]", out.stdout + out.stderr)
    debs = _debs(lb.store)
    assert any(d.startswith("jq_") for d in debs), debs
    second = context(lb, "apt2", {"Dockerfile": f"FROM debian:bookworm\n{step} && jq --version\n"})
    out = build(lb, second, "-t", "jq:2")
    log = out.stdout + out.stderr
    assert re.search(r"Need to get 0 B/", log), log
    assert "jq-1.6" in log
    debs_in_image = ok(lb, "run", "jq:2", "find", "/var/cache/apt", "-name", "*.deb")
    assert debs_in_image.stdout == ""  # they went to the mount, not the layer


@pytest.mark.timeout(600)  # apt installs some 400 packages for npm
def test_a_node_app_with_a_package_from_npm(lb: Cli) -> None:
    build(lb, context(lb, "node", {"Dockerfile": NODE}), "-t", "node:1")
    assert ok(lb, "run", "node:1").stdout == "is-number true\n"


def test_apt_without_subordinate_ids_fails_with_a_hint_not_a_hang(
    debian_base: DebianBase, solo_user: pwd.struct_passwd, tun_for_users: None
) -> None:
    """apt drops to `_apt` (setgroups, seteuid): a namespace that maps the caller alone
    cannot give it those ids. The step fails at once and the error says what is missing."""
    lb = user_cli(debian_base, solo_user, "lbsolo-debian-")
    try:
        ctx = context(lb, "apt", {"Dockerfile": "FROM debian:bookworm\nRUN apt-get update\n"})
        start = time.monotonic()
        out = lb("build", "--progress", "plain", ctx)
        took = time.monotonic() - start
    finally:
        remove_tree(lb.work)
    assert out.code != 0 and took < 120, (took, out)
    assert "setgroups 65534 failed" in out.stderr
    assert "did not complete successfully: exit code 100" in out.stderr
    hint = "hint: this rootless build maps only your own user id (no range for lbsolo in"
    assert hint in out.stderr and "usermod --add-subuids" in out.stderr


HOLD = (
    "touch {d}/a-started; i=0; "
    "while [ ! -e {d}/b-ran ] && [ $i -lt 40 ]; do sleep 0.25; i=$((i+1)); done; "
    "touch {d}/a-done"
)


@pytest.mark.parametrize(
    ("sharing", "b_saw", "kept"),
    [
        # B runs while A holds the cache, in the same directory
        ("shared", "a-started\n", ["a-done", "a-started", "b-ran"]),
        # B waits for A's exclusive lock, then finds all A wrote
        ("locked", "a-done\na-started\n", ["a-done", "a-started", "b-ran"]),
        # B gets a fresh empty directory while A holds the cache; what B writes is dropped
        ("private", "", ["a-done", "a-started"]),
    ],
    ids=["shared", "locked", "private"],
)
def test_cache_sharing_modes_with_two_builds_at_once(
    debian_base: DebianBase, tmp_path: Path, sharing: str, b_saw: str, kept: list[str]
) -> None:
    """Build A holds /var/cache/apt until B's step has run (at most 10 s); B lists what it
    finds there. Root only: the locking is the store's, the same for a rootless store."""
    lb = debian_base.new_store(tmp_path / "store")
    mount = f"--mount=type=cache,target=/var/cache/apt,sharing={sharing}"
    d = "/var/cache/apt"
    hold = HOLD.format(d=d)
    a = make_context(tmp_path, {"Dockerfile": f"FROM debian:bookworm\nRUN {mount} {hold}\n"}, "a")
    b = make_context(
        tmp_path,
        {"Dockerfile": f"FROM debian:bookworm\nRUN {mount} ls {d} > /saw; touch {d}/b-ran\n"},
        "b",
    )
    first = lb.spawn("build", "--progress", "plain", "-t", "a:1", a)
    started = tmp_path / "store" / "cache" / "mounts"
    deadline = time.monotonic() + 120
    while not list(started.glob("*/a-started")):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    second = lb.spawn("build", "--progress", "plain", "-t", "b:1", b)
    for proc in (first, second):
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    assert lb.ok("run", "b:1", "cat", "/saw").stdout == b_saw
    (cache,) = started.glob("*/a-started")
    assert sorted(os.listdir(cache.parent)) == kept
