"""RUN --mount=type=ssh in a rootless build: lbtest's own ssh-agent (which accepts only its
owner's connections) answers `ssh-add -l` inside a step built in lbtest's user namespace, and
the socket stays out of the layer.

The build runs in an `as_user` child that can import nothing new (conftest.py): what it needs
is imported here first.
"""

from __future__ import annotations

import os
import pwd
import selectors  # noqa: F401  (the agent relay's, imported lazily)
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import layerbuild.engine.runmounts_prepare
import layerbuild.engine.sshforward
from layerbuild.engine.executor import build
from layerbuild.engine.options import BuildOptions
from layerbuild.export.load import load
from layerbuild.export.oci_layout import write_oci_layout
from layerbuild.store.layers import remove_tree
from layerbuild.store.layout import Store
from tests.integration.sandbox.conftest import as_user, chown_tree, user_owned_dir
from tests.integration.test_run_ssh import RUN_SSH_ADD, ssh_add_tools
from tests.support.cli import OciImage, unpack

assert layerbuild.engine.runmounts_prepare and layerbuild.engine.sshforward  # for the child
pytestmark = [pytest.mark.root, pytest.mark.rootless, pytest.mark.overlay]

DOCKERFILE = (
    "FROM busybox\n"
    f"RUN --mount=type=ssh --mount=type=bind,from=tools,target=/t {RUN_SSH_ADD} > /keys\n"
)


def _as(user: pwd.struct_passwd, *argv: str | Path) -> list[str]:
    return [
        "setpriv",
        f"--reuid={user.pw_uid}",
        f"--regid={user.pw_gid}",
        "--clear-groups",
        *map(str, argv),
    ]


def _build(home: Path, agent: Path) -> str:
    store = Store.open(home / "store")
    for _, desc in load(store, home / "busybox"):
        store.refs.set("busybox:latest", desc)
    options = BuildOptions(
        context=home / "ctx",
        tags=("t:1",),
        registry=None,
        build_contexts={"tools": str(home / "tools")},
        ssh={"default": agent},
    )
    result = build(store, options)
    write_oci_layout(store, result.descriptor, home / "oci", ["t:1"])
    return str(result.digest)


def test_rootless_step_reaches_the_users_agent(
    lbtest_user: pwd.struct_passwd, busybox_layout: Path, tun_for_users: None
) -> None:
    home = user_owned_dir(lbtest_user, "lbtest-ssh-")
    agent_proc = None
    try:
        (home / "ctx").mkdir()
        (home / "ctx" / "Dockerfile").write_text(DOCKERFILE)
        shutil.copytree(busybox_layout, home / "busybox")
        ssh_add_tools(home)
        subprocess.run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "rootless-key",
                "-f",
                home / "key",
            ],
            check=True,
        )
        chown_tree(home, lbtest_user)
        sock = home / "agent.sock"
        agent_proc = subprocess.Popen(
            _as(lbtest_user, "ssh-agent", "-D", "-a", sock), stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline, "ssh-agent did not make its socket"
            time.sleep(0.05)
        subprocess.run(
            _as(lbtest_user, "ssh-add", "-q", home / "key"),
            check=True,
            capture_output=True,
            env={**os.environ, "SSH_AUTH_SOCK": str(sock)},
        )
        as_user(lbtest_user, lambda: _build(home, sock))
        assert "rootless-key (ED25519)" in (unpack(home / "oci", "1") / "keys").read_text()
        assert [m.name for m in OciImage(home / "oci").layer_members(-1)] == ["keys"]
    finally:
        if agent_proc is not None:
            agent_proc.terminate()
            agent_proc.wait()
        remove_tree(home)
