"""Rootless runs: enter a user namespace once, at startup, in which the caller is root.

What buildah and podman do ("unshare"): a non-root process calls `enter_rootless_userns` while
it is still single-threaded. When /etc/subuid and /etc/subgid give the caller a range of at
least 65536 ids and newuidmap/newgidmap (Debian `uidmap`) are installed, container ids 0..65535
map onto the caller (0) and that range (1..65535); everything afterwards (unpacking layers with
their owners, reading what a RUN wrote, deleting snapshots, the RUN sandbox itself) runs as
root of that namespace, so a rootless build gives the same image tree as a root build.

Without subordinate ids only 0 is mapped: owners other than root in the image's layers are
not kept (the files belong to 0), files of other owners on the host appear as 65534 (nobody),
chown to other ids and `USER` other than root fail in RUN, and setgroups(2) is denied (the
kernel requires that for an unprivileged single-id map).

The maps of a process that just unshared its user namespace must be written from outside it
(newuidmap is setuid root in the parent namespace): a helper is forked *before* unshare,
waits for the word, runs the two tools on the parent's pid and reports back.
"""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from layerbuild.errors import SandboxError
from layerbuild.privilege import read_text
from layerbuild.sandbox import linux

CONTAINER_IDS = 65536  # 0..65535, what Docker's default userns-remap and podman map


@dataclass(frozen=True, slots=True)
class IdRange:
    """`size` ids from `container` inside map onto `host`.. outside (one uid_map line)."""

    container: int
    host: int
    size: int


@dataclass(frozen=True, slots=True)
class IdMap:
    uids: tuple[IdRange, ...]
    gids: tuple[IdRange, ...]

    @property
    def single(self) -> bool:
        """Only one id mapped: setgroups is denied and other ids are unmapped."""
        return len(self.uids) == 1 and self.uids[0].size == 1


def parse_subid(text: str, user: str, uid: int) -> tuple[int, int] | None:
    """The first range of /etc/subuid-format `text` for `user` (name or uid) with ≥65535 ids."""
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in (user, str(uid)):
            continue
        try:
            start, count = int(fields[1]), int(fields[2])
        except ValueError:
            continue
        if count >= CONTAINER_IDS - 1:
            return start, count
    return None


def id_map(
    uid: int, gid: int, subuid: tuple[int, int] | None, subgid: tuple[int, int] | None
) -> IdMap:
    """The map for a caller (uid, gid) with optional subordinate ranges (start, count)."""
    if subuid is None or subgid is None:
        return IdMap((IdRange(0, uid, 1),), (IdRange(0, gid, 1),))
    rest = CONTAINER_IDS - 1
    return IdMap(
        (IdRange(0, uid, 1), IdRange(1, subuid[0], rest)),
        (IdRange(0, gid, 1), IdRange(1, subgid[0], rest)),
    )


def caller_id_map() -> IdMap:
    """The map for the calling user, with subordinate ids when they are usable here."""
    uid, gid = os.getuid(), os.getgid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    helpers = shutil.which("newuidmap") and shutil.which("newgidmap")
    subuid = parse_subid(read_text("/etc/subuid"), name, uid) if helpers else None
    subgid = parse_subid(read_text("/etc/subgid"), name, uid) if helpers else None
    return id_map(uid, gid, subuid, subgid)


def _run_tool(tool: str, pid: int, ranges: tuple[IdRange, ...]) -> str:
    """Run newuidmap/newgidmap for `pid`; "" on success, else what went wrong."""
    args = [tool, str(pid)]
    for r in ranges:
        args += [str(r.container), str(r.host), str(r.size)]
    try:
        done = subprocess.run(args, capture_output=True, text=True, check=False)
    except OSError as e:
        return f"{tool}: {e.strerror or e}"
    if done.returncode != 0:
        return f"{tool} failed: {done.stderr.strip() or f'exit status {done.returncode}'}"
    return ""


def _write_own_single_map(ids: IdMap) -> None:
    """Map only the caller, from inside the new namespace (no helper needed for that)."""
    try:
        # an unprivileged process may map only itself, and only after denying setgroups
        with open("/proc/self/setgroups", "w", encoding="ascii") as f:
            f.write("deny")
        for name, r in (("uid_map", ids.uids[0]), ("gid_map", ids.gids[0])):
            with open(f"/proc/self/{name}", "w", encoding="ascii") as f:
                f.write(f"{r.container} {r.host} {r.size}\n")
    except OSError as e:
        raise SandboxError(
            f"writing the user namespace id map failed: {e.strerror}", hint=_USERNS_HINT
        ) from e


_USERNS_HINT = (
    "unprivileged user namespaces may be disabled "
    "(sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone, "
    "kernel.apparmor_restrict_unprivileged_userns)"
)
_SUBID = "check /etc/subuid and /etc/subgid for this user, and that newuidmap is setuid root"


_THREADS_HINT = "call enter_rootless_userns() at startup, before starting threads"


def _unshare() -> None:
    try:
        linux.unshare(linux.CLONE_NEWUSER)
    except OSError as e:
        # EINVAL: threads Python does not know about (started by a C library)
        hint = _THREADS_HINT if e.errno == errno.EINVAL else _USERNS_HINT
        raise SandboxError(f"cannot create a user namespace: {e.strerror}", hint=hint) from e


def _helper_main(parent: int, ids: IdMap, go_r: int, done_w: int) -> NoReturn:
    """The forked helper: once the parent has unshared, write its maps from outside."""
    code = 1
    try:
        if os.read(go_r, 1) == b"u":
            error = _run_tool("newuidmap", parent, ids.uids) or _run_tool(
                "newgidmap", parent, ids.gids
            )
            os.write(done_w, (error or "ok").encode())
            code = 0
    finally:
        os._exit(code)  # never return into the caller's code


def _unshare_with_helper(ids: IdMap) -> str:
    """Unshare, and have the helper map `ids`; "" when it did, else what went wrong (the
    process is then in the new namespace without any map)."""
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.close(done_r)
        _helper_main(parent, ids, go_r, done_w)
    os.close(go_r)
    os.close(done_w)
    try:
        _unshare()
        os.write(go_w, b"u")
        os.close(go_w)
        go_w = -1
        answer = b""
        while chunk := os.read(done_r, 4096):
            answer += chunk
    finally:
        if go_w >= 0:
            os.close(go_w)  # unshare failed: EOF tells the helper to leave
        os.close(done_r)
        os.waitpid(pid, 0)
    if answer == b"ok":
        return ""
    return answer.decode(errors="replace") or "the id-map helper died"


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def enter_rootless_userns(on_warning: Callable[[str], None] = _warn) -> IdMap | None:
    """Make a non-root process root of a new user namespace (see the module docstring); the
    map it got, or None when already uid 0 (root, or inside a namespace entered before).

    Call it once at startup, before any thread starts: the kernel refuses unshare(2) of a user
    namespace to a multi-threaded process. SandboxError when the namespace cannot be made.
    When newuidmap/newgidmap fail, the namespace gets the single-id map instead (a process
    left in a namespace without a map could not even create files) and `on_warning` says so.
    """
    if os.geteuid() == 0:
        return None
    if threading.active_count() > 1:
        raise SandboxError(
            "cannot enter a user namespace: the process already runs several threads",
            hint=_THREADS_HINT,
        )
    ids = caller_id_map()
    if ids.single:
        _unshare()
        _write_own_single_map(ids)
    elif failure := _unshare_with_helper(ids):
        if read_text("/proc/self/uid_map").strip():
            # half mapped (newgidmap failed after newuidmap): no map can be written any more
            raise SandboxError(f"mapping the user namespace ids failed: {failure}", hint=_SUBID)
        ids = id_map(ids.uids[0].host, ids.gids[0].host, None, None)  # getuid(): 65534 now
        _write_own_single_map(ids)
        on_warning(
            f"mapping subordinate ids failed ({failure}); only your own id is mapped, so "
            f"owners other than root are not kept (docs/run.md, Rootless). Hint: {_SUBID}"
        )
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    if not ids.single:
        os.setgroups([])  # the caller's supplementary groups are unmapped here
    return ids
