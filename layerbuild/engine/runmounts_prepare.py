"""RUN --mount values (runmounts.py) made real for one step: cache-key input and sandbox mounts.

`mounts_key` is what the step's cache key sees of its mounts: the spec of each, plus for a bind
the digest of what it shows (the context subtree after .dockerignore, or the key of the stage /
image it comes from); a secret contributes its spec only, never its content. `secret_env` gives
the variables of ``env=`` secrets, which only the step's process sees. `prepared` makes
the `Mount`s the sandbox performs: cache directories (locked per their sharing mode) in
``<store>/cache/mounts``, private copies of secrets, throwaway copies for ``rw`` binds and for
context binds that .dockerignore filters; everything temporary goes when the step ends.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from layerbuild.context.ignore import IgnoreRules
from layerbuild.digest import Digest
from layerbuild.engine.runmounts import (
    BindMount,
    CacheMount,
    RunMount,
    SecretMount,
    SshMount,
    TmpfsMount,
    describe,
)
from layerbuild.engine.sources import SourceResolver
from layerbuild.engine.state import StageState
from layerbuild.errors import BuildError
from layerbuild.sandbox.mounts import Mount
from layerbuild.sandbox.securejoin import secure_join
from layerbuild.store.layers import remove_tree
from layerbuild.store.layout import Store


class MountFrom:
    """Resolves ``from=`` of a mount: an earlier stage (name or index), a named context
    directory, or an image; gives its cache-key part and its root directory."""

    def __init__(self, stages: Mapping[int, StageState], sources: SourceResolver) -> None:
        self.stages = stages
        self.sources = sources

    def _stage(self, name: str) -> StageState | None:
        for index, state in self.stages.items():
            if state.name.lower() == name.lower() or name == str(index):
                return state
        return None

    def _named(self, name: str) -> bool:
        return name.lower() in self.sources.named

    def key(self, name: str) -> str:
        state = self._stage(name)
        if state is not None:
            return state.source_ref()
        if self._named(name) and (directory := self.sources.directory(name)) is not None:
            return f"dir:{tree_digest(directory, None)[0]}"
        return f"image:{self.sources.image(name, named_context=self._named(name)).digest}"

    def root(self, name: str) -> Path:
        state = self._stage(name)
        if state is not None:
            return self.sources.stage_rootfs(state.layers)
        return self.sources.rootfs_of(name, named_context=self._named(name))


@dataclass(frozen=True)
class MountInputs:
    """Everything mounts are made from, supplied by the executor for one build."""

    store: Store
    context: Path
    ignore: IgnoreRules | None
    secrets: Mapping[str, Path]
    origins: MountFrom
    scratch: Path  # private directory for secret copies and rw bind copies
    ssh: Mapping[str, Path] = field(default_factory=dict)  # --ssh: id -> agent socket


def mounts_key(mounts: Sequence[RunMount], inputs: MountInputs) -> str:
    """The ``mounts`` cache-key input: each mount's spec plus what a bind or a seeded cache
    shows (the context subtree's digest, or the stage/image key); never secret content."""
    items = []
    for mount in mounts:
        item = describe(mount)
        if isinstance(mount, BindMount | CacheMount) and (
            isinstance(mount, BindMount) or mount.from_ is not None
        ):
            item["shows"] = _origin_key(mount, inputs)
        items.append(item)
    return json.dumps(items, sort_keys=True)


def _origin_key(mount: BindMount | CacheMount, inputs: MountInputs) -> str:
    if mount.from_ is not None:
        return inputs.origins.key(mount.from_)
    root = Path(secure_join(str(inputs.context), mount.source))
    rel = os.path.relpath(root, inputs.context)
    return str(tree_digest(root, inputs.ignore, "" if rel == "." else rel)[0])


@contextlib.contextmanager
def prepared(mounts: Sequence[RunMount], inputs: MountInputs) -> Iterator[tuple[Mount, ...]]:
    """The sandbox mounts for `mounts`; locks, secret copies and rw copies last until exit."""
    with contextlib.ExitStack() as stack:
        out = []
        for mount in mounts:
            made = _prepare(mount, inputs, stack)
            if made is not None:
                out.append(made)
        yield tuple(out)


def _prepare(mount: RunMount, inputs: MountInputs, stack: contextlib.ExitStack) -> Mount | None:
    if isinstance(mount, TmpfsMount):
        size = (f"size={mount.size}",) if mount.size is not None else ()
        return Mount("tmpfs", "tmpfs", mount.target, ("nosuid", "nodev", "mode=1777", *size))
    if isinstance(mount, SecretMount):
        return _secret_mount(mount, inputs, stack)
    if isinstance(mount, SshMount):
        return _ssh_mount(mount, inputs, stack)
    if isinstance(mount, CacheMount):
        directory = _cache_dir(mount, inputs, stack)
        return Mount("bind", str(directory), mount.target, ("rbind", *_ro(mount.readonly)))
    return _bind_mount(mount, inputs, stack)


def _ro(readonly: bool) -> tuple[str, ...]:
    return ("ro",) if readonly else ()


def _secret_mount(
    mount: SecretMount, inputs: MountInputs, stack: contextlib.ExitStack
) -> Mount | None:
    data = _secret_data(mount, inputs.secrets)
    if data is None or mount.target is None:
        return None  # BuildKit skips an optional secret that was not given
    # a private copy: the command cannot change the user's file, and the mode/owner the
    # mount asks for apply to the copy only
    fd, name = tempfile.mkstemp(prefix="secret-", dir=inputs.scratch)
    stack.callback(_unlink, name)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    _own(name, mount.uid, mount.gid)
    os.chmod(name, mount.mode)
    return Mount("bind", name, mount.target, ("bind", "ro", "nosuid", "nodev", "noexec"))


def _ssh_mount(mount: SshMount, inputs: MountInputs, stack: contextlib.ExitStack) -> Mount | None:
    agent = inputs.ssh.get(mount.id)
    if agent is None:
        if not mount.required:
            return None  # BuildKit skips an optional ssh mount whose id was not given
        raise BuildError(
            f"SSH agent {mount.id!r} is required by RUN --mount=type=ssh but was not given",
            hint=f"pass --ssh {mount.id}=SOCKET (or --ssh {mount.id} for $SSH_AUTH_SOCK)",
        )
    from layerbuild.engine.sshforward import AgentForward

    # its own short directory: a socket's path must fit in 108 bytes, a store path may not
    directory = Path(tempfile.mkdtemp(prefix="layerbuild-ssh-"))
    stack.callback(remove_tree, directory)
    forward = AgentForward(directory / "agent.sock", agent)
    stack.callback(forward.close)
    _own(str(forward.path), mount.uid, mount.gid)
    os.chmod(forward.path, mount.mode)
    return Mount("bind", str(forward.path), mount.target, ("bind", "nosuid", "nodev", "noexec"))


def secret_env(mounts: Sequence[RunMount], secrets: Mapping[str, Path]) -> dict[str, str]:
    """The variables of ``type=secret,env=NAME`` mounts, for the step's process only (never
    its config, history or key). An optional secret that was not given is the empty string,
    as BuildKit's ExecOp.loadSecretEnv sets it; a required one fails."""
    env: dict[str, str] = {}
    for mount in mounts:
        if not isinstance(mount, SecretMount) or mount.env is None:
            continue
        data = _secret_data(mount, secrets)
        if data is not None and b"\0" in data:
            raise BuildError(
                f"secret {mount.id!r} holds a NUL byte and cannot be the value of "
                f"the variable {mount.env}",
                hint=f"mount it as a file instead: drop env={mount.env}",
            )
        env[mount.env] = os.fsdecode(data or b"")  # fsdecode: execve gets the bytes back
    return env


def ssh_env(mounts: tuple[RunMount, ...], env: dict[str, str]) -> dict[str, str]:
    """SSH_AUTH_SOCK for a step with ssh mounts (the first one's target), unless the step's
    environment sets it already, as BuildKit does (client/llb/exec.go)."""
    first = next((m for m in mounts if isinstance(m, SshMount)), None)
    if first is None or "SSH_AUTH_SOCK" in env:
        return {}
    return {"SSH_AUTH_SOCK": first.target}



def _secret_data(mount: SecretMount, secrets: Mapping[str, Path]) -> bytes | None:
    """The secret's content; None for an optional secret that was not given."""
    src = secrets.get(mount.id)
    if src is None:
        if not mount.required:
            return None
        raise BuildError(
            f"secret {mount.id!r} is required by RUN --mount but was not given",
            hint=f"pass --secret id={mount.id},src=PATH (or env=VAR)",
        )
    try:
        return Path(src).read_bytes()
    except OSError as e:
        raise BuildError(
            f"cannot read secret {mount.id!r} from {src}: {e.strerror}",
            hint="check the src= path given to --secret",
        ) from None


def _bind_mount(mount: BindMount, inputs: MountInputs, stack: contextlib.ExitStack) -> Mount:
    if mount.from_ is not None:
        root, ignore = inputs.origins.root(mount.from_), None
    else:
        root, ignore = inputs.context, inputs.ignore
    src = Path(secure_join(str(root), mount.source))
    if not os.path.lexists(src):
        raise BuildError(
            f"RUN --mount source {mount.source!r} does not exist in "
            f"{'the build context' if mount.from_ is None else mount.from_}",
            hint="give source= a path that exists there",
        )
    rel = os.path.relpath(src, root)
    needs_copy = mount.readwrite or (ignore is not None and _ignores_below(src, ignore, rel))
    if needs_copy:
        copy = Path(tempfile.mkdtemp(prefix="bind-", dir=inputs.scratch))
        stack.callback(remove_tree, copy)
        src = _copy_selection(src, copy / "data", ignore, "" if rel == "." else rel)
    return Mount("bind", str(src), mount.target, ("rbind", *_ro(not mount.readwrite)))


def _cache_dir(mount: CacheMount, inputs: MountInputs, stack: contextlib.ExitStack) -> Path:
    """The persistent directory of a cache id, locked as its sharing mode says."""
    base = inputs.store.cache_mounts_dir
    base.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", mount.id).strip("_")[:60]
    name += "-" + hashlib.sha256(mount.id.encode()).hexdigest()[:16]
    directory = base / name
    lock = os.open(base / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    stack.callback(os.close, lock)  # closing the fd releases the flock
    if mount.sharing == "private":
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # in use by another step: BuildKit gives a private mount a fresh directory
            fresh = Path(tempfile.mkdtemp(prefix="cache-", dir=inputs.scratch))
            stack.callback(remove_tree, fresh)
            return _fill_cache(fresh / "d", mount, inputs)
    else:
        fcntl.flock(lock, fcntl.LOCK_EX if mount.sharing == "locked" else fcntl.LOCK_SH)
    if not directory.is_dir():
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=base))
        try:
            _commit_dir(_fill_cache(tmp / "d", mount, inputs), directory)
        finally:
            remove_tree(tmp)
    return directory


def _fill_cache(directory: Path, mount: CacheMount, inputs: MountInputs) -> Path:
    """A new cache directory: empty with the mount's mode and owner, or seeded from=."""
    if mount.from_ is not None:
        root = inputs.origins.root(mount.from_)
        _copy_selection(Path(secure_join(str(root), mount.source)), directory, None, "")
    else:
        directory.mkdir()
    _own(str(directory), mount.uid, mount.gid)
    os.chmod(directory, mount.mode)
    return directory


def _commit_dir(src: Path, target: Path) -> None:
    try:
        os.rename(src, target)
    except OSError:
        if not target.is_dir():
            raise  # else another build created the same cache first: use theirs


def _own(path: str, uid: int, gid: int) -> None:
    try:
        os.lchown(path, uid, gid)
    except PermissionError:
        pass  # not root at all (no user namespace): the mount stays the caller's
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        # root of a rootless build's user namespace, which does not map this id
        raise BuildError(
            f"RUN --mount uid={uid},gid={gid}: the id is not mapped in this rootless build's "
            "user namespace",
            hint="use an id below 65536 and give your user a range of 65536 ids in "
            "/etc/subuid and /etc/subgid (with newuidmap/newgidmap installed); without them "
            "only 0 is mapped",
        ) from None


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _walk(root: Path, ignore: IgnoreRules | None, prefix: str) -> Iterator[tuple[str, bool]]:
    """(path below root, excluded?) for every entry below `root`, sorted, not following
    symlinks; `prefix` is root's own path in the context, which the ignore rules are about."""
    if not root.is_dir() or root.is_symlink():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            excluded = ignore is not None and ignore.matches(posixpath.join(prefix, rel))
            yield rel, excluded


def _ignores_below(root: Path, ignore: IgnoreRules, prefix: str) -> bool:
    return any(excluded for _, excluded in _walk(root, ignore, prefix))


def tree_digest(root: Path, ignore: IgnoreRules | None, prefix: str = "") -> tuple[Digest, int]:
    """The digest of what a bind of `root` shows (names, types, modes, sizes, link targets,
    contents; not owners or times) and the number of entries it covers."""
    h = hashlib.sha256(b"layerbuild.bindmount.v1\n")
    count = 0
    entries = [("", False)] if not root.is_dir() or root.is_symlink() else []
    entries += [e for e in _walk(root, ignore, prefix) if not e[1]]
    for rel, _ in entries:
        path = root / rel if rel else root
        st = os.lstat(path)
        link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
        size = st.st_size if stat.S_ISREG(st.st_mode) else 0
        h.update(f"{rel}\0{st.st_mode:o}\0{size}\0{link}\0".encode("utf-8", "surrogateescape"))
        if stat.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                h.update(hashlib.file_digest(f, "sha256").digest())
        count += 1
    return Digest.from_hash(h), count


def _copy_selection(src: Path, dest: Path, ignore: IgnoreRules | None, prefix: str) -> Path:
    """Copy `src` (file or directory) to `dest`, leaving out what `ignore` excludes."""
    if not src.is_dir() or src.is_symlink():
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / src.name
        shutil.copy2(src, target, follow_symlinks=False)
        return target

    def skip(directory: str, names: list[str]) -> set[str]:
        if ignore is None:
            return set()
        rel = os.path.relpath(directory, src)
        base = prefix if rel == "." else posixpath.join(prefix, rel)
        return {n for n in names if ignore.matches(posixpath.join(base, n))}

    shutil.copytree(src, dest, symlinks=True, ignore=skip)
    return dest
