"""A git URL as the build context and as an ADD source, served by `git daemon` on 127.0.0.1:
branches, tags, `#ref:subdir`, `--keep-git-dir`, commit-time mtimes, keys on the resolved
commit, and clear errors for a bad URL or ref."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Layerbuild, make_context, unpack

pytestmark = pytest.mark.tools  # umoci unpacks the images

T1, T2 = 1_600_000_000, 1_700_000_000  # the two commits' times


@dataclass(frozen=True)
class GitServer:
    """A repository `repo.git` served read-only at `url`; `work` is a clone that commits and
    pushes to it."""

    url: str
    work: Path

    def commit(self, files: dict[str, str], when: int, *, tag: str | None = None) -> None:
        for rel, text in files.items():
            (self.work / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.work / rel).write_text(text)
        _git(self.work, "add", "-A")
        _git(self.work, "commit", "-q", "-m", f"at {when}", when=when)
        if tag is not None:
            _git(self.work, "tag", "-a", "-m", tag, tag, when=when)
        _git(self.work, "push", "-q", "--tags", "origin", "main")

    def head(self) -> str:
        return _git(self.work, "rev-parse", "HEAD").strip()


def _git(cwd: Path, *args: str, when: int = T1) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": f"@{when} +0000",
        "GIT_COMMITTER_DATE": f"@{when} +0000",
    }
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    return subprocess.run(
        ["git", *ident, *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    """`git daemon` on 127.0.0.1 serving tmp_path/served; stopped after the test."""
    served = tmp_path / "served"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(served / "repo.git"))
    work = tmp_path / "work"
    _git(tmp_path, "clone", "-q", str(served / "repo.git"), str(work))
    _git(work, "checkout", "-q", "-b", "main")
    port = _free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--export-all", f"--base-path={served}", "--listen=127.0.0.1",
         f"--port={port}", "--reuseaddr", str(served)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "git daemon did not start"
            time.sleep(0.05)
        yield GitServer(f"git://127.0.0.1:{port}/repo.git", work)
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


REPO_V1 = {
    "Dockerfile": "FROM busybox\nCOPY . /src/\n",
    ".dockerignore": "secret.txt\n",
    "a.txt": "one\n",
    "secret.txt": "left out\n",
    "sub/Dockerfile": "FROM busybox\nCOPY . /sub/\n",
    "sub/b.txt": "in sub\n",
}


def _rootfs(lb: Layerbuild, context: str | Path, *args: str) -> Path:
    out = lb.store.parent / f"out-{time.monotonic_ns()}.tar"
    lb.ok("build", "--progress", "plain", "-t", "t:1", "-o", f"type=oci,dest={out}", *args,
          context)
    return unpack(out, "1")


def _steps(lb: Layerbuild, context: Path) -> list[dict[str, Any]]:
    report = lb.store.parent / "report.json"
    lb.ok("build", "--progress", "plain", "--report", report, context)
    steps = json.loads(report.read_text())["steps"]
    assert isinstance(steps, list)
    return steps


def test_context_from_a_branch_tag_and_subdir(lb: Layerbuild, git_server: GitServer) -> None:
    git_server.commit(REPO_V1, T1, tag="v1")
    git_server.commit({"a.txt": "two\n"}, T2)
    head = _rootfs(lb, git_server.url + "#main") / "src"
    assert (head / "a.txt").read_text() == "two\n"
    assert not (head / "secret.txt").exists()  # the repository's .dockerignore applies
    assert not (head / ".git").exists()
    assert (head / "a.txt").stat().st_mtime == T2  # the commit's time
    default = _rootfs(lb, git_server.url) / "src"  # no ref: the default branch
    assert (default / "a.txt").read_text() == "two\n"
    tagged = _rootfs(lb, git_server.url + "#v1") / "src"
    assert (tagged / "a.txt").read_text() == "one\n"
    sub = _rootfs(lb, git_server.url + "#v1:sub") / "sub"
    assert sorted(p.name for p in sub.iterdir()) == ["Dockerfile", "b.txt"]


def test_context_dockerfile_named_with_f(lb: Layerbuild, git_server: GitServer) -> None:
    git_server.commit({**REPO_V1, "other/Build": "FROM busybox\nCOPY a.txt /x\n"}, T1)
    root = _rootfs(lb, git_server.url, "-f", "other/Build")
    assert (root / "x").read_text() == "one\n"


def test_add_a_repository(lb: Layerbuild, git_server: GitServer, tmp_path: Path) -> None:
    git_server.commit(REPO_V1, T1)
    commit = git_server.head()
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": f"FROM busybox\nADD {git_server.url}#main /app\n"
            f"ADD --keep-git-dir {git_server.url}#{commit}:sub /kept/\n"
            f"ADD --keep-git-dir {git_server.url} /whole\n"
        },
    )
    root = _rootfs(lb, ctx)
    assert (root / "app" / "a.txt").read_text() == "one\n"
    assert (root / "app" / "secret.txt").read_text() == "left out\n"  # no .dockerignore here
    assert not (root / "app" / ".git").exists()
    assert (root / "app" / "sub" / "b.txt").stat().st_mtime == T1
    assert sorted(p.name for p in (root / "kept").iterdir()) == ["Dockerfile", "b.txt"]
    assert (root / "whole" / ".git" / "HEAD").is_file()
    assert (root / "app" / "a.txt").stat().st_uid == 0


def test_add_keys_on_the_commit(lb: Layerbuild, git_server: GitServer, tmp_path: Path) -> None:
    git_server.commit(REPO_V1, T1)
    ctx = make_context(tmp_path, {"Dockerfile": f"FROM busybox\nADD {git_server.url}#main /app\n"})
    assert [s["cache"] for s in _steps(lb, ctx)][-1] == "miss"
    assert [s["cache"] for s in _steps(lb, ctx)][-1] == "hit"  # the same commit
    git_server.commit({"a.txt": "two\n"}, T2)  # the branch moves
    assert [s["cache"] for s in _steps(lb, ctx)][-1] == "miss"
    assert (_rootfs(lb, ctx) / "app" / "a.txt").read_text() == "two\n"


def test_bad_url_and_missing_ref(lb: Layerbuild, git_server: GitServer, tmp_path: Path) -> None:
    git_server.commit(REPO_V1, T1)
    missing = git_server.url.replace("repo.git", "nothere.git")
    for context in (missing, git_server.url + "#no-such-branch"):
        proc = lb("build", context)
        assert proc.returncode == 3, proc.stderr
        assert "git source" in proc.stderr and "Traceback" not in proc.stderr
    ctx = make_context(tmp_path, {"Dockerfile": f"FROM busybox\nADD {git_server.url}#nope /x\n"})
    proc = lb("build", ctx)
    assert proc.returncode == 3, proc.stderr
    assert "#nope" in proc.stderr and "Traceback" not in proc.stderr
