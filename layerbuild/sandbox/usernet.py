"""The default network of a RUN step: slirp4netns, a user-mode TCP/IP stack, wired to the
step's own network namespace (what rootless podman and buildah use, and what we use as root
too, so both behave alike; docs/run.md, "Network").

slirp4netns runs in the builder's network namespace and opens a tap device inside the step's:
packets the step sends become ordinary sockets of the slirp4netns process on the host, so the
step gets outbound TCP/UDP (NAT) and a DNS forwarder at 10.0.2.3, and nothing on the host can
connect into the step. The host's loopback is out of reach unless asked for (docker's
``--add-host NAME:host-gateway``), since 10.0.2.2 would otherwise reach every service the
host binds to 127.0.0.1.

Lifetime: started by spawn.py per RUN once the step's namespace exists, stopped when the step
ends. It also stops on its own when the builder dies: its ``--exit-fd`` is the read end of a
pipe whose only write ends live in the builder and in the builder's children, all of which
die with it (the sandbox's processes by PDEATHSIG).
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from layerbuild.errors import SandboxError

TOOL = "slirp4netns"
TAP = "tap0"
MTU = 65520  # rootless podman's default: far fewer packets for the same bytes than 1500
READY_TIMEOUT = 20.0


@dataclass
class UserNet:
    """A running slirp4netns for one network namespace."""

    process: subprocess.Popen[bytes]
    exit_w: int  # closing it tells slirp4netns to exit
    log: Path

    def stop(self) -> None:
        """Stop and reap it (idempotent): close its exit pipe, then kill if it lingers."""
        if self.exit_w >= 0:
            os.close(self.exit_w)
            self.exit_w = -1
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(pid: int, log: Path, *, host_loopback: bool = False) -> UserNet:
    """Give the network namespace of process `pid` an interface with outbound access; return
    once slirp4netns says it is configured. SandboxError (naming the cause) when it cannot."""
    tool = shutil.which(TOOL)
    if tool is None:
        raise SandboxError(
            "RUN's default network needs slirp4netns, which is not installed",
            hint="install it (Debian/Ubuntu: apt-get install slirp4netns), or choose "
            "--network host (the host's network) or --network none (no network)",
        )
    ready_r, ready_w = os.pipe()
    exit_r, exit_w = os.pipe()
    os.set_inheritable(exit_w, False)
    argv = [
        tool,
        "--configure",
        f"--mtu={MTU}",
        f"--ready-fd={ready_w}",
        f"--exit-fd={exit_r}",
        "--enable-sandbox",
        "--enable-seccomp",
        *([] if host_loopback else ["--disable-host-loopback"]),
        str(pid),
        TAP,
    ]
    try:
        with open(log, "wb") as out:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(ready_w, exit_r),
                start_new_session=True,  # a Ctrl-C at the terminal is the builder's to handle
            )
    except OSError as e:
        os.close(ready_r)
        os.close(exit_w)
        raise SandboxError(f"could not start {tool}: {e.strerror}", hint=_hint("")) from e
    finally:
        os.close(ready_w)
        os.close(exit_r)
    net = UserNet(process, exit_w, log)
    try:
        _wait_ready(ready_r, net)
    except BaseException:
        net.stop()
        raise
    finally:
        os.close(ready_r)
    return net


def _wait_ready(ready_r: int, net: UserNet) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([ready_r], [], [], left)
        if readable:
            if os.read(ready_r, 1):
                return
            break  # EOF: it exited before the network was up
    try:
        status: int | None = net.process.wait(timeout=1)
    except subprocess.TimeoutExpired:
        status = None
    said = _last_lines(net.log)
    what = f"exited with status {status}" if status is not None else "did not get ready"
    raise SandboxError(
        f"RUN's default network could not be set up: slirp4netns {what}"
        + (f": {said}" if said else ""),
        hint=_hint(said),
    )


def _last_lines(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    noise = ("WARNING: Support for seccomp is experimental", "sent tapfd", "received tapfd")
    return "; ".join(line for line in lines if not line.startswith(noise))[-600:]


def _hint(said: str) -> str:
    if "/dev/net/tun" in said or "tun" in said.lower():
        mode = _tun_mode()
        return (
            f"slirp4netns needs /dev/net/tun readable and writable by this user{mode}: "
            "make it so (chmod 0666 /dev/net/tun, Debian's default), or choose "
            "--network host or --network none"
        )
    return "choose --network host (the host's network) or --network none (no network)"


def _tun_mode() -> str:
    try:
        return f" (it is mode {os.stat('/dev/net/tun').st_mode & 0o777:04o})"
    except OSError:
        return " (it does not exist: load the tun module)"
