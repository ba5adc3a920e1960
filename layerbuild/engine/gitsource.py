"""Check out a git URL (context/gitref.py) with the `git` command: a build context or an ADD
source.

A shallow fetch of the one ref (a branch, a tag, or, when the server allows asking for it, a
commit; else the whole history is fetched and the commit looked up in it), checked out
detached. The `.git` directory is removed unless asked for (ADD --keep-git-dir). Every entry's
mtime is set to the commit's time, as BuildKit's `mtime=commit` does (its default whenever
SOURCE_DATE_EPOCH is set): the same commit then gives the same files, metadata included, on
every machine and at every build, and a step that copies them keys and caches the same.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from layerbuild.context.gitref import GitRef
from layerbuild.errors import ContextError
from layerbuild.store.layers import remove_tree

_HEX = re.compile(r"^[0-9a-fA-F]{4,64}$")


@dataclass(frozen=True)
class Checkout:
    root: Path  # the tree to use: the checkout, or its subdirectory
    commit: str  # the resolved commit hash


@contextlib.contextmanager
def git_context(ref: GitRef) -> Iterator[Checkout]:
    """A checkout in a temporary directory removed when the block ends (a build context)."""
    directory = Path(tempfile.mkdtemp(prefix="layerbuild-git-"))
    try:
        yield checkout(ref, directory / "repo", keep_git_dir=False)
    finally:
        remove_tree(directory)


def checkout(ref: GitRef, dest: Path, *, keep_git_dir: bool) -> Checkout:
    """Check `ref` out into `dest` (which must not exist)."""
    _git(ref, "init", "-q", str(dest))
    commit = _fetch(ref, dest)
    if ref.commit is not None and not commit.startswith(ref.commit.lower()):
        raise ContextError(
            f"git source {ref.name}: resolves to commit {commit}, not {ref.commit}",
            hint="fix the commit= value, or the ref it should match",
        )
    _git(ref, "-c", "advice.detachedHead=false", "checkout", "-q", commit, cwd=dest)
    when = int(_git(ref, "log", "-1", "--format=%ct", commit, cwd=dest).strip())
    if not keep_git_dir:
        remove_tree(dest / ".git")
    _set_mtimes(dest, when)
    return Checkout(_subdir(ref, dest), commit)


def _fetch(ref: GitRef, dest: Path) -> str:
    """Fetch what `ref` names and return its commit."""
    wanted = ref.ref or "HEAD"
    try:
        _git(ref, "fetch", "-q", "--depth=1", "--no-tags", ref.remote, wanted, cwd=dest)
        return _git(ref, "rev-parse", "FETCH_HEAD^{commit}", cwd=dest).strip()
    except ContextError:
        if not _HEX.match(wanted):
            raise
    # a commit the server will not hand out by itself: fetch every branch and tag, look it up
    refspecs = ("+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
    _git(ref, "fetch", "-q", ref.remote, *refspecs, cwd=dest)
    return _git(ref, "rev-parse", "--verify", "-q", f"{wanted}^{{commit}}", cwd=dest).strip()


def _git(ref: GitRef, *args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    # never wait for a password or a host key answer nobody is there to give
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise ContextError(
            f"git source {ref.name}: the git command is not installed",
            hint="install git (Debian: apt-get install git)",
        ) from None
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        said = " ".join(lines[-3:]) or f"exit {proc.returncode}"
        raise ContextError(
            f"git source {ref.name}: git {args[0]} failed: {said}",
            hint="check the repository URL, that the branch, tag or commit exists, and "
            "that this machine may read the repository",
        )
    return proc.stdout


def _subdir(ref: GitRef, dest: Path) -> Path:
    if not ref.subdir:
        return dest
    root = dest / ref.subdir
    real = root.resolve()
    if not root.is_dir() or not real.is_relative_to(dest.resolve()):
        raise ContextError(
            f"git source {ref.name}: {ref.subdir!r} is not a directory of the repository",
            hint="name an existing directory after the ':' of the URL's fragment",
        )
    return real


def _set_mtimes(top: Path, when: int) -> None:
    for dirpath, dirnames, filenames in os.walk(top, topdown=False):
        for name in [*filenames, *dirnames]:
            os.utime(os.path.join(dirpath, name), (when, when), follow_symlinks=False)
    os.utime(top, (when, when))
