"""The builder's end of a RUN step's processes: fork the children of child.py, hand them their
pipes, start the default network once they have a network namespace, feed stdin, stream the
output, wait, and collect the children's reports.

Apart from runner.py, which decides what a step runs in (the overlay, its /etc files, the
snapshotter, what to clean out of the upperdir afterwards): this is only the process and file
descriptor plumbing between the builder and the sandbox.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from layerbuild.errors import SandboxError
from layerbuild.sandbox import usernet
from layerbuild.sandbox.cancel import Cancel
from layerbuild.sandbox.child import ChildFds, ChildPlan, outer_main

# stages run on threads (engine/scheduler.py): a step forked while another opens its pipes would
# inherit the other's child ends, and the other would never see the end of its output
_FORKING = threading.Lock()


@dataclass
class _Pipes:
    out_r: int
    out_w: int
    report_r: int
    report_w: int
    lifeline_r: int
    lifeline_w: int
    stdin_r: int | None = None
    stdin_w: int | None = None
    netns_r: int | None = None  # the default network's handshake (child.ChildFds)
    netns_w: int | None = None
    go_r: int | None = None
    go_w: int | None = None

    @classmethod
    def open(cls, with_stdin: bool, with_network: bool) -> _Pipes:
        fds = [fd for _ in range(3) for fd in os.pipe()]
        pipes = cls(*fds)
        if with_stdin:
            pipes.stdin_r, pipes.stdin_w = os.pipe()
        if with_network:
            pipes.netns_r, pipes.netns_w = os.pipe()
            pipes.go_r, pipes.go_w = os.pipe()
        return pipes

    def _child_ends(self) -> tuple[int | None, ...]:
        return (
            self.out_w,
            self.report_w,
            self.lifeline_r,
            self.lifeline_w,
            self.stdin_r,
            self.netns_w,
            self.go_r,
        )

    def _parent_ends(self) -> tuple[int | None, ...]:
        return (self.out_r, self.report_r, self.stdin_w, self.netns_r, self.go_w)

    def child_fds(self) -> ChildFds:
        parent = tuple(fd for fd in self._parent_ends() if fd is not None)
        return ChildFds(
            self.out_w,
            self.report_w,
            self.lifeline_r,
            self.lifeline_w,
            self.stdin_r,
            parent,
            netns_w=self.netns_w,
            net_go_r=self.go_r,
        )

    def close_child_ends(self) -> None:
        for fd in self._child_ends():
            if fd is not None:
                os.close(fd)

    def close_parent_ends(self) -> None:
        for fd in self._parent_ends():
            if fd is not None:
                os.close(fd)


@dataclass(frozen=True, slots=True)
class UserNetPlan:
    log: Path
    host_loopback: bool


def execute(
    plan: ChildPlan,
    stdin: bytes | None,
    on_output: Callable[[bytes], None],
    usernet_plan: UserNetPlan | None = None,
    cancel: Cancel | None = None,
) -> tuple[int, list[dict[str, object]]]:
    """Fork the children, wire up the default network, feed stdin, stream output; (exit
    status, the children's reports). `cancel`: kills the step when the build stops."""
    with _FORKING:
        pipes = _Pipes.open(stdin is not None, usernet_plan is not None)
        builder = os.getpid()
        pid = os.fork()
        if pid == 0:
            outer_main(plan, pipes.child_fds(), builder)
        pipes.close_child_ends()
    net: usernet.UserNet | None = None
    try:
        if cancel is not None and not cancel.enter(pid):
            raise SandboxError("cancelled: another stage of the build failed")
        if usernet_plan is not None:
            net = _wire_network(pipes, pid, usernet_plan)
        if stdin is not None and pipes.stdin_w is not None:
            _feed(pipes.stdin_w, stdin)
            pipes.stdin_w = None
        while chunk := os.read(pipes.out_r, 65536):
            on_output(chunk)
        if cancel is not None:
            cancel.leave(pid)
        _, status = os.waitpid(pid, 0)
        pid = 0
        if cancel is not None and cancel.cancelled:
            raise SandboxError("cancelled: another stage of the build failed")
        code = os.waitstatus_to_exitcode(status)
        return (code if code >= 0 else 128 - code), _read_reports(pipes.report_r)
    finally:
        if pid:
            if cancel is not None:
                cancel.leave(pid)
            # cancelled (Ctrl-C, an error in on_output): killing the outer process kills PID 1
            # through PDEATHSIG, and the PID namespace with it
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        if net is not None:
            net.stop()
        pipes.close_parent_ends()


def _wire_network(pipes: _Pipes, pid: int, usernet_plan: UserNetPlan) -> usernet.UserNet | None:
    """Once the outer process has its network namespace, start slirp4netns on it and let the
    step go on; None when the outer process failed first (its report says why)."""
    assert pipes.netns_r is not None and pipes.go_w is not None
    if not os.read(pipes.netns_r, 1):
        return None
    net = usernet.start(pid, usernet_plan.log, host_loopback=usernet_plan.host_loopback)
    os.write(pipes.go_w, b"g")
    return net


def _feed(fd: int, data: bytes) -> None:
    """Write stdin from a thread: the step may fill its output pipe before reading it all."""

    def write() -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BrokenPipeError:
            pass  # the step did not read all of its input
        finally:
            os.close(fd)

    threading.Thread(target=write, name="sandbox-stdin", daemon=True).start()


def _read_reports(fd: int) -> list[dict[str, object]]:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    out = []
    for line in b"".join(chunks).splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out
