"""RUN's network through the `build` command: the default mode, `--network`, `RUN --network`,
`--add-host`, what a step without network is told when it fails for want of one, and that a
killed build leaves no network helper behind. (The modes themselves, root and rootless, are
checked in sandbox/test_network.py.)"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, make_context

pytestmark = [pytest.mark.root, pytest.mark.overlay]

INTERFACES = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ,"


def test_run_has_its_own_network_with_an_interface_by_default(
    lb: Layerbuild, tmp_path: Path
) -> None:
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": f"FROM busybox\nRUN echo default=$({INTERFACES})\n"
            f"RUN --network=none echo none=$({INTERFACES})\n"
            f"RUN --network=default echo again=$({INTERFACES})\n"
        },
    )
    err = lb.build(ctx, "--no-cache").stderr
    assert "default=lo,tap0," in err
    assert "none=lo," in err
    assert "again=lo,tap0," in err

    err = lb.build(ctx, "--no-cache", "--network", "none").stderr
    assert "default=lo," in err and "again=lo," in err  # RUN --network=default: the build's


def test_network_mode_is_part_of_the_run_key(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo hi\n"})
    report = tmp_path / "r.json"
    lb.build(ctx)
    lb.build(ctx, "--network", "none", "--report", report)
    steps = json.loads(report.read_text())["steps"]
    assert steps[-1]["cache"] == "miss"
    assert "network changed" in steps[-1]["reason"]


def test_add_host_lines_reach_etc_hosts_but_not_the_layer(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(
        tmp_path,
        {"Dockerfile": "FROM busybox\nRUN grep -E 'db|gw' /etc/hosts > /seen\n"},
    )
    root = lb.rootfs(ctx, "--add-host", "db.local:10.1.2.3", "--add-host", "gw:host-gateway")
    assert (root / "seen").read_text().splitlines() == ["10.1.2.3\tdb.local", "10.0.2.2\tgw"]
    assert not (root / "etc" / "hosts").exists()  # busybox has none; the sandbox's stays out


def test_bad_add_host_is_refused_before_the_build(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nRUN true\n"})
    proc = lb("build", "--add-host", "db:not-an-ip", ctx)
    assert proc.returncode != 0
    assert "invalid IP address 'not-an-ip' in --add-host 'db:not-an-ip'" in proc.stderr
    assert "host-gateway" in proc.stderr  # what else may stand there
    assert "Traceback" not in proc.stderr


def test_a_step_without_network_that_fails_to_resolve_is_told_how_to_get_one(
    lb: Layerbuild, tmp_path: Path
) -> None:
    ctx = make_context(
        tmp_path,
        {"Dockerfile": "FROM busybox\nRUN --network=none wget -q -O- http://deb.debian.org/\n"},
    )
    proc = lb("build", "--progress", "plain", ctx)
    assert proc.returncode != 0
    assert "bad address" in proc.stderr.lower()
    hint = proc.stderr[proc.stderr.index("hint:") :]
    assert "no network (--network none)" in hint and "--network host" in hint


def test_a_step_that_fails_on_an_untrusted_certificate_is_told_of_the_ca_secret(
    lb: Layerbuild, tmp_path: Path
) -> None:
    # what npm prints behind a TLS-intercepting proxy (the output is what the hint reads)
    run = "RUN echo 'npm ERR! code SELF_SIGNED_CERT_IN_CHAIN' >&2; exit 1"
    ctx = make_context(tmp_path, {"Dockerfile": f"FROM busybox\n{run}\n"})
    proc = lb("build", "--progress", "plain", ctx)
    assert proc.returncode != 0
    hint = proc.stderr[proc.stderr.index("hint:") :]
    assert "--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt" in hint
    assert "Traceback" not in proc.stderr


def test_a_killed_build_leaves_no_network_helper(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nRUN sleep 60\n"})
    build = lb.spawn("build", "--progress", "plain", ctx)
    try:
        helper = _wait_for_helper_of(build.pid)
        assert helper is not None, "no slirp4netns started for the RUN"
    finally:
        build.send_signal(signal.SIGKILL)
        build.communicate()
    deadline = time.monotonic() + 10
    while _alive(helper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(helper), f"slirp4netns {helper} outlived the killed build"


def _wait_for_helper_of(builder: int) -> int | None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            if comm == "slirp4netns" and ppid == builder:
                return int(entry.name)
        time.sleep(0.05)
    return None


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    if stat[stat.rindex(")") + 2] == "Z":  # reaped by init soon: it has exited
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_layerbuild_run_has_the_default_network_unless_told_otherwise(
    lb: Layerbuild, tmp_path: Path
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nCMD [\"true\"]\n"})
    lb.build(ctx, "-t", "net:1")
    default = lb.ok("run", "net:1", "sh", "-c", INTERFACES).stdout
    none = lb.ok("run", "--network", "none", "net:1", "sh", "-c", INTERFACES).stdout
    added = lb.ok("run", "--add-host", "db:10.1.2.3", "net:1", "grep", "db", "/etc/hosts").stdout
    assert (default, none, added) == ("lo,tap0,", "lo,", "10.1.2.3\tdb\n")
