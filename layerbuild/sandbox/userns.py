"""User namespaces for rootless RUN: which ids map where, and writing the maps.

Inside the sandbox, root (0) is the calling user. When /etc/subuid and /etc/subgid give the
caller a range of at least 65536 ids and newuidmap/newgidmap (Debian `uidmap`) are installed,
ids 1..65535 map onto that range, so `chown 1000 f` or `USER app` work as in Docker. Without
them only 0 is mapped: chown to any other id fails with EINVAL, files of other owners in the
image appear as 65534 (nobody), and setgroups(2) is denied (the kernel requires that for an
unprivileged single-id map).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass

from layerbuild.sandbox.errors import SandboxError

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

    def to_container(self, host_uid: int, host_gid: int) -> tuple[int, int]:
        """Container ids of a file owned by host ids (65534, the overflow id, if unmapped)."""
        return _lookup(self.uids, host_uid), _lookup(self.gids, host_gid)


def _lookup(ranges: tuple[IdRange, ...], host: int) -> int:
    for r in ranges:
        if r.host <= host < r.host + r.size:
            return r.container + host - r.host
    return 65534


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


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def caller_id_map() -> IdMap:
    """The map for the calling user, with subordinate ids when they are usable here."""
    uid, gid = os.getuid(), os.getgid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    helpers = shutil.which("newuidmap") and shutil.which("newgidmap")
    subuid = parse_subid(_read("/etc/subuid"), name, uid) if helpers else None
    subgid = parse_subid(_read("/etc/subgid"), name, uid) if helpers else None
    return id_map(uid, gid, subuid, subgid)


def _helper(tool: str, pid: int, ranges: tuple[IdRange, ...]) -> None:
    args = [tool, str(pid)]
    for r in ranges:
        args += [str(r.container), str(r.host), str(r.size)]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SandboxError(
            f"{tool} failed: {done.stderr.strip() or done.returncode}",
            hint="check /etc/subuid and /etc/subgid for this user, and that the helper is setuid",
        )


def write_maps(pid: int, ids: IdMap) -> None:
    """Write the uid/gid maps of process `pid` (which has just unshared its user namespace)."""
    if not ids.single:
        _helper("newuidmap", pid, ids.uids)
        _helper("newgidmap", pid, ids.gids)
        return
    try:
        # an unprivileged process may map only itself, and only after denying setgroups
        with open(f"/proc/{pid}/setgroups", "w", encoding="ascii") as f:
            f.write("deny")
        for name, r in (("uid_map", ids.uids[0]), ("gid_map", ids.gids[0])):
            with open(f"/proc/{pid}/{name}", "w", encoding="ascii") as f:
                f.write(f"{r.container} {r.host} {r.size}\n")
    except OSError as e:
        raise SandboxError(
            f"writing the user namespace id map failed: {e.strerror}",
            hint="unprivileged user namespaces may be disabled "
            "(sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)",
        ) from e
