"""A private Debian dockerd (with its BuildKit) for comparing layerbuild's images with BuildKit's.

Name: Dockerd (start, docker, load_oci, build_oci, stop).
Scope: tests/integration/test_buildkit_compare.py: the same Dockerfile and context built by
       BuildKit and by layerbuild, both images exported as OCI layouts.
Depends: Debian's docker.io (dockerd 20.10 and its /usr/bin/docker client), skopeo.
Lifecycle: `Dockerd.start(state_dir)` runs dockerd in its own session on a unix socket inside
       `state_dir`, with no iptables and no bridge (so builds use --network=none or host, never
       the default bridge network); `stop()` sends SIGTERM, waits, kills if it must, and removes
       `state_dir`. Nothing outside `state_dir` is touched: the host's own docker (if any) and
       its socket are never used.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

# Debian's 20.10 client speaks to Debian's 20.10 daemon; a newer client found first on PATH
# would hand builds to buildx, which this daemon's API does not have.
DOCKER = "/usr/bin/docker"
DOCKERD = "/usr/sbin/dockerd"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
BUILD_ATTEMPTS = 3
RUNC_FLAKE = 'exec: "/bin/sh": stat /bin/sh: no such file or directory'


@dataclass(frozen=True)
class Dockerd:
    """A dockerd started by `start`, reached through `docker()` on its private socket."""

    state: Path
    pid: int

    @property
    def host(self) -> str:
        return f"unix://{self.state}/docker.sock"

    @classmethod
    def start(cls, state: Path) -> Dockerd:
        """Start dockerd with all its state under `state` and wait until it answers.

        `state` must be a short path: containerd's and the shims' unix sockets live under the
        exec root, and a socket path longer than 108 bytes cannot be bound.
        """
        for tool in (DOCKERD, DOCKER):
            if not os.access(tool, os.X_OK):
                pytest.fail(f"{tool} is not installed (apt-get install docker.io)")
        state.mkdir(parents=True, exist_ok=True)
        with (state / "log").open("wb") as log:
            proc = subprocess.Popen(
                [
                    DOCKERD, "--iptables=false", "--ip6tables=false", "--bridge=none",
                    "--data-root", str(state / "root"), "--exec-root", str(state / "exec"),
                    "-H", f"unix://{state}/docker.sock", "--pidfile", str(state / "pid"),
                ],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        daemon = cls(state, proc.pid)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                daemon._cleanup()
                pytest.fail(f"dockerd exited {proc.returncode}:\n{daemon.log()}")
            if daemon._answers():
                return daemon
            time.sleep(0.2)
        daemon.stop()
        pytest.fail(f"dockerd did not answer within {START_TIMEOUT:.0f} s")

    def _answers(self) -> bool:
        probe = subprocess.run(
            [DOCKER, "version"], env=self._env(), capture_output=True, timeout=30, check=False
        )
        return probe.returncode == 0

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env.update(DOCKER_HOST=self.host, DOCKER_BUILDKIT="1")
        return env

    def log(self) -> str:
        return (self.state / "log").read_text(errors="replace")[-4000:]

    def docker(self, *args: str | os.PathLike[str]) -> str:
        """Run the docker client against this daemon; the test fails with its output if it does."""
        proc = self._run(args)
        if proc.returncode != 0:
            self._fail(args, proc)
        return proc.stdout

    def _run(self, args: tuple[str | os.PathLike[str], ...]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DOCKER, *map(str, args)],
            env=self._env(), capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    def _fail(
        self, args: tuple[str | os.PathLike[str], ...], proc: subprocess.CompletedProcess[str]
    ) -> NoReturn:
        pytest.fail(
            f"docker {' '.join(map(str, args))} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}\n"
            f"--- dockerd's log (end)\n{self.log()}"
        )

    def load_oci(self, layout: Path, tag: str, name: str) -> None:
        """Load image `tag` of an OCI layout into the daemon as `name`."""
        with tempfile.TemporaryDirectory(dir=self.state) as tmp:
            archive = Path(tmp) / "image.tar"
            _skopeo("copy", "-q", f"oci:{layout}:{tag}", f"docker-archive:{archive}:{name}")
            self.docker("load", "-i", archive)

    def build_oci(self, context: Path, out: Path, *args: str) -> dict[str, Any]:
        """`docker build --network=none` of `context`, saved as the OCI layout `out`:latest.

        Returns the image config exactly as BuildKit wrote it, read from `docker save`'s
        archive: skopeo's conversion to an OCI layout rewrites the config into the OCI schema,
        which drops Docker's fields (Healthcheck, OnBuild, Shell).
        """
        tag = f"bk-compare-{os.getpid()}:{time.monotonic_ns()}"
        self._build(context, tag, args)
        with tempfile.TemporaryDirectory(dir=self.state) as tmp:
            archive = Path(tmp) / "image.tar"
            self.docker("save", "-o", archive, tag)
            _skopeo("copy", "-q", f"docker-archive:{archive}", f"oci:{out}:latest")
            config = _archive_config(archive)
        self.docker("rmi", tag)
        return config

    def _build(self, context: Path, tag: str, args: tuple[str, ...]) -> None:
        # This dockerd's BuildKit now and then fails a RUN with "stat /bin/sh: no such file or
        # directory" although the steps before left /bin/sh alone (1 build in about 12 of
        # USER + WORKDIR + RUN over busybox, with nothing else running); the same build then
        # succeeds. Only that message is retried: it is the reference builder's flake, and any
        # other failure is reported as it is.
        argv = ("build", "-q", "--network=none", "-t", tag, *args, str(context))
        for _ in range(BUILD_ATTEMPTS):
            proc = self._run(argv)
            if proc.returncode == 0:
                return
            if RUNC_FLAKE not in proc.stderr:
                break
        self._fail(argv, proc)

    def stop(self) -> None:
        """SIGTERM the daemon's session, wait for it, SIGKILL what is left, remove its state."""
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and _alive(self.pid):
            time.sleep(0.2)
        # what is left of the session (containerd, a hung shim) goes with it
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._cleanup()

    def _cleanup(self) -> None:
        # dockerd leaves overlay mounts of its data root behind when it is killed; unmount them
        # first, or rmtree would fail on (or descend into) a mounted filesystem
        for mount in reversed(_mounts_under(self.state)):
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        shutil.rmtree(self.state, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether `pid` is still running (a zombie child is reaped and counts as gone)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        done = 0
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
    return done == 0


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    return sorted(p for p in points if p.startswith(prefix))


def _skopeo(*args: str) -> None:
    if shutil.which("skopeo") is None:
        pytest.fail("skopeo is not installed (apt-get install skopeo)")
    proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(f"skopeo {' '.join(args)} failed:\n{proc.stderr}")


def _archive_config(archive: Path) -> dict[str, Any]:
    """The config of the one image in a `docker save` archive."""
    with tarfile.open(archive) as tar:
        manifest = _json_member(tar, "manifest.json")
        assert isinstance(manifest, list) and len(manifest) == 1, manifest
        config = _json_member(tar, manifest[0]["Config"])
    assert isinstance(config, dict)
    return config


def _json_member(tar: tarfile.TarFile, name: str) -> Any:
    member = tar.extractfile(name)
    assert member is not None, f"{name} is not a file in the docker archive"
    return json.load(member)
