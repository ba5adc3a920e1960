"""RUN in the sandbox, for real: output, exit codes, namespaces, /dev, users, cancellation."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path

import pytest

from layerbuild.errors import SandboxError
from tests.integration.sandbox.conftest import Sandbox, mountinfo

pytestmark = [pytest.mark.root, pytest.mark.overlay]


def test_output_streams_back_and_exit_codes_pass_through(sandbox: Sandbox) -> None:
    ok = sandbox.run("echo hello; echo oops >&2")
    assert (ok.code, ok.text) == (0, "hello\noops\n")
    assert sandbox.run("exit 3").code == 3
    # PID 1 ignores signals it has no handler for, as in Docker: a TERM sent from inside is lost
    assert sandbox.run("kill -TERM $$; echo still").text == "still\n"


def test_env_cwd_and_user_are_the_specs(sandbox: Sandbox) -> None:
    r = sandbox.run(
        "echo $GREETING; pwd; id -u; id -g; id -G",
        env=("GREETING=hi", "PATH=/bin"),
        cwd="/work/dir",
        uid=1000,
        gid=1000,
        groups=(1000, 65534),
    )
    assert r.text.split() == ["hi", "/work/dir", "1000", "1000", "1000", "65534"]
    assert ("DIR", "work/dir") in r.paths  # WORKDIR is created when missing, as BuildKit does


def test_namespaces_pid1_hostname_and_no_network(sandbox: Sandbox) -> None:
    r = sandbox.run("echo $$; hostname; cat /etc/hostname; cat /proc/net/dev", hostname="box")
    lines = r.text.splitlines()
    assert lines[:3] == ["1", "box", "box"]
    interfaces = [line.split(":")[0].strip() for line in lines[5:]]
    assert interfaces == ["lo"]


def test_host_network_sees_the_hosts_interfaces(sandbox: Sandbox) -> None:
    with open("/proc/net/dev", encoding="ascii") as f:
        host = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
    r = sandbox.run("tail -n +3 /proc/net/dev", network="host")
    assert sorted(line.split(":")[0].strip() for line in r.text.splitlines()) == host


def test_dev_proc_and_sys_are_the_containers(sandbox: Sandbox) -> None:
    r = sandbox.run(
        "ls /dev; echo x > /dev/null; head -c 4 /dev/urandom | wc -c; "
        "touch /sys/x 2>/dev/null && echo sys-writable; "
        "grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status; test -e /work/main || echo no-host"
    )
    lines = r.text.split()
    for node in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx"):
        assert node in lines
    assert "4" in lines and "sys-writable" not in lines and "no-host" in lines
    assert "00000000a80425fb" in lines  # Docker's default capabilities, nothing more
    assert lines[lines.index("NoNewPrivs:") + 1] == "0"  # setuid binaries keep working
    assert r.changes == []  # the mount points never reach the layer


def test_etc_files_are_provided_without_leaking(sandbox: Sandbox) -> None:
    r = sandbox.run("cat /etc/hosts; cat /etc/resolv.conf >/dev/null && echo resolv; echo >/etc/x")
    assert "127.0.0.1\tlocalhost layerbuild" in r.text and "resolv" in r.text
    assert r.paths == [("DIR", "etc"), ("FILE", "etc/x")]


def test_stdin_is_fed_to_the_step(sandbox: Sandbox) -> None:
    assert sandbox.run("wc -c", stdin=b"x" * 200_000).text.strip() == "200000"
    assert sandbox.run("cat").text == ""  # /dev/null by default


def test_a_missing_command_is_exit_127(sandbox: Sandbox) -> None:
    spec = sandbox.spec("", argv=("no-such-command", "arg"))
    from layerbuild.sandbox import run

    out: list[bytes] = []
    assert run(spec, on_output=out.append, snapshotter=sandbox.mode) == 127
    assert b"no-such-command" in b"".join(out) and b"not found" in b"".join(out)
    assert sandbox.run("no-such-command").code == 127


def test_an_unusable_overlay_is_a_sandbox_error(overlay_sandbox: Sandbox, tmp_path: Path) -> None:
    from layerbuild.sandbox import run

    sandbox = overlay_sandbox
    with pytest.raises(SandboxError, match="missing does not exist"):
        run(sandbox.spec("true", lowerdirs=(tmp_path / "missing",)), rootless=False)
    # overlayfs refuses a work dir on another filesystem than the upper dir
    with tempfile.TemporaryDirectory(dir="/dev/shm") as elsewhere:
        spec = sandbox.spec("true", workdir=Path(elsewhere))
        with pytest.raises(SandboxError, match="overlayfs not available") as err:
            run(spec, rootless=False, snapshotter="overlay")
    assert err.value.hint and "store" in err.value.hint


def test_auto_falls_back_when_overlay_cannot_be_mounted(
    overlay_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the kernel refuses the overlay mount, auto mode warns and uses the next
    snapshotter, with the same changes. The refusal is provoked with mount options naming a
    lower directory that does not exist (what a kernel without overlay support amounts to)."""
    from layerbuild.sandbox import overlay_changes, run, runner

    sandbox = overlay_sandbox
    monkeypatch.setattr(runner, "_working", [])  # what earlier auto runs found to work
    monkeypatch.setattr(runner, "overlay_options", lambda *a, **k: "lowerdir=/nonexistent")
    warnings: list[str] = []
    spec = sandbox.spec("echo hi > /made; rm /bin/ls")
    out: list[bytes] = []
    code = run(
        spec, on_output=out.append, rootless=False, snapshotter="auto", on_warning=warnings.append
    )
    assert (code, b"".join(out)) == (0, b"")
    assert len(warnings) == 1 and "overlayfs not available" in warnings[0]
    assert "falling back to fuse-overlayfs" in warnings[0]
    changes = overlay_changes(spec.upperdir, lowerdirs=spec.lowerdirs)
    assert [(c.kind.name, c.path) for c in changes] == [
        ("DIR", "bin"),
        ("WHITEOUT", "bin/ls"),
        ("FILE", "made"),
    ]
    assert runner._working == ["fuse-overlayfs"]
    assert runner.snapshotter_order("copy") == ["copy"]
    with pytest.raises(SandboxError, match="unknown snapshotter"):
        runner.snapshotter_order("zfs")


def _children() -> list[int]:
    me = str(os.getpid())
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                out.append(int(pid))
    return out


def _alive(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                continue
    return found


def test_a_killed_step_leaves_no_mount_and_no_process(sandbox: Sandbox) -> None:
    before = mountinfo()
    started = threading.Event()
    result: list[int] = []
    spec = sandbox.spec("echo started; sleep 3141; echo never")
    from layerbuild.sandbox import run

    def on_output(data: bytes) -> None:
        if b"started" in data:
            started.set()

    thread = threading.Thread(target=lambda: result.append(run(spec, on_output=on_output)))
    thread.start()
    assert started.wait(10)
    assert _alive("3141")
    (child,) = _children()
    os.kill(child, signal.SIGKILL)  # the builder's child: PID 1 and the sleep must die with it
    thread.join(10)
    assert result == [128 + signal.SIGKILL]
    deadline = time.monotonic() + 5
    while _alive("3141") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _alive("3141") == []
    assert mountinfo() == before


def test_cancelling_from_the_output_callback_kills_the_step(sandbox: Sandbox) -> None:
    before = mountinfo()
    spec = sandbox.spec("echo started; sleep 2718")
    from layerbuild.sandbox import run

    def on_output(data: bytes) -> None:
        raise KeyboardInterrupt  # what Ctrl-C does while the builder streams output

    with pytest.raises(KeyboardInterrupt):
        run(spec, on_output=on_output)
    deadline = time.monotonic() + 5
    while _alive("2718") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _alive("2718") == []
    assert _children() == []
    assert mountinfo() == before
