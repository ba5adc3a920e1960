"""RUN --mount=type=ssh through the CLI: a real ssh-agent (Debian openssh-client) answers
`ssh-add -l` inside the step, and neither its socket nor SSH_AUTH_SOCK reaches the image.

The busybox base has no ssh-add: the host's, with the libraries `ldd` names, comes in through a
bind mount of a named context and runs under its own dynamic loader.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, OciImage, make_context, unpack

pytestmark = [pytest.mark.root, pytest.mark.overlay]

RUN_SSH_ADD = "/t/ld.so --library-path /t /t/ssh-add -l"


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Path]:
    """An ssh-agent on a socket in tmp_path holding one key with the comment layerbuild-test."""
    for tool in ("ssh-agent", "ssh-add", "ssh-keygen"):
        assert shutil.which(tool), f"{tool} is not installed (Debian package openssh-client)"
    key = tmp_path / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "layerbuild-test", "-f", key],
        check=True,
    )
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline, "ssh-agent did not make its socket"
            time.sleep(0.05)
        subprocess.run(
            ["ssh-add", "-q", key],
            check=True,
            env={**os.environ, "SSH_AUTH_SOCK": str(sock)},
            capture_output=True,
        )
        yield sock
    finally:
        proc.terminate()
        proc.wait()


def ssh_add_tools(tmp_path: Path) -> Path:
    """ssh-add and every library it loads, flat in one directory (`ld.so` is the loader)."""
    tools = tmp_path / "tools"
    tools.mkdir()
    binary = shutil.which("ssh-add")
    assert binary is not None
    shutil.copy(binary, tools / "ssh-add")
    ldd = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    for line in ldd.splitlines():
        path = next((w for w in line.split() if w.startswith("/")), None)
        if path is None:
            continue
        name = "ld.so" if "ld-linux" in path else os.path.basename(path)
        shutil.copy(path, tools / name)
    return tools


def test_agent_answers_in_the_step_and_stays_out_of_the_image(
    lb: Layerbuild, tmp_path: Path, agent: Path
) -> None:
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\n"
            "RUN --mount=type=ssh --mount=type=bind,from=tools,target=/t "
            "--mount=type=ssh,target=/s2,mode=0741,uid=100,gid=102 "
            f"{RUN_SSH_ADD} > /keys && echo $SSH_AUTH_SOCK >> /keys "
            "&& stat -c '%a %u %g' $SSH_AUTH_SOCK /s2 >> /keys\n"
        },
    )
    tools = ssh_add_tools(tmp_path)
    args = ("--ssh", "default", "--build-context", f"tools={tools}")
    oci = lb.build_oci(ctx, *args, env={"SSH_AUTH_SOCK": str(agent)})
    keys = (unpack(oci, "1") / "keys").read_text().splitlines()
    assert "layerbuild-test (ED25519)" in keys[0]
    assert keys[1:] == ["/run/buildkit/ssh_agent.0", "600 0 0", "741 100 102"]
    image = OciImage(oci)
    assert [m.name for m in image.layer_members(-1)] == ["keys"]  # no run/, no s2
    assert "SSH_AUTH_SOCK=" not in json.dumps(image.config()["config"])
    # the agent is not part of the key: another agent socket (same id) hits the cache
    again = lb.build(ctx, "--ssh", f"default={agent}", "--build-context", f"tools={tools}")
    assert "CACHED" in again.stderr


def test_required_agent_missing_or_key_file_given_fail_clearly(
    lb: Layerbuild, tmp_path: Path
) -> None:
    ctx = make_context(
        tmp_path, {"Dockerfile": "FROM busybox\nRUN --mount=type=ssh,id=gh,required true\n"}
    )
    proc = lb("build", ctx)
    assert proc.returncode != 0
    assert "SSH agent 'gh' is required" in proc.stderr and "--ssh gh=SOCKET" in proc.stderr
    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    proc = lb("build", "--ssh", f"gh={key}", ctx)
    assert proc.returncode != 0 and "key files are not supported" in proc.stderr


def test_optional_agent_missing_skips_the_mount(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(
        tmp_path,
        {"Dockerfile": "FROM busybox\nRUN --mount=type=ssh test ! -e $SSH_AUTH_SOCK && echo ok\n"},
    )
    assert "ok" in lb.build(ctx).stderr
