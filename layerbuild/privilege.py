"""What this process may do to files and mounts: real root, root in a user namespace, or neither.

Three situations, which the store and the sandbox treat differently:

- *privileged*: uid 0 in the initial user namespace (its uid_map is the identity
  ``0 0 4294967295``). It may chown to any id, create device nodes, set ``trusted.*`` xattrs
  and mount overlayfs with them.
- *root in a user namespace* (what `sandbox.userns.enter_rootless_userns` makes of a rootless
  run, or what ``podman unshare`` gives): uid 0, so it may chown to every id its namespace maps
  and mount overlay, proc, tmpfs in namespaces it owns, but the kernel refuses device nodes
  (other than 0/0 whiteouts), ``trusted.*`` xattrs and sysfs without a network namespace.
- *unprivileged*: a plain user; it can chown nothing.

"Rootless" means "not privileged": the last two follow the unprivileged mount rules
(``userxattr`` overlay, bind-mounted /dev nodes, ``user.overlay.opaque``).

This module is apart from `sandbox/` because the store's unpacker needs it too, and the
sandbox package imports the store.
"""

from __future__ import annotations

import os

_IDENTITY = ["0", "0", "4294967295"]


def is_identity_map(uid_map: str) -> bool:
    """Whether /proc/<pid>/uid_map text maps every id onto itself (the initial namespace)."""
    lines = [line.split() for line in uid_map.splitlines() if line.strip()]
    return lines == [_IDENTITY]


def mapped_count(id_map: str) -> int:
    """How many ids a /proc/<pid>/uid_map (or gid_map) text maps."""
    total = 0
    for line in id_map.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2].isdigit():
            total += int(fields[2])
    return total


def read_text(path: str) -> str:
    """A small system file's text ("" when it cannot be read: no such kernel feature)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def in_initial_userns() -> bool:
    """Whether this process is in the host's user namespace (or a kernel without them)."""
    text = read_text("/proc/self/uid_map")
    return not text or is_identity_map(text)


def privileged() -> bool:
    """Real root: uid 0 in the initial user namespace (see the module docstring)."""
    return os.geteuid() == 0 and in_initial_userns()


def rootless() -> bool:
    """Not privileged: the unprivileged mount and xattr rules apply."""
    return not privileged()


def single_id_namespace() -> bool:
    """Whether this process's user namespace maps one uid only (no subordinate ids): chown
    to any other id fails, and setgroups(2) is denied."""
    return not in_initial_userns() and mapped_ids() <= 1


def mapped_ids() -> int:
    """How many uids this process's user namespace maps (0..n-1 for a rootless map)."""
    return mapped_count(read_text("/proc/self/uid_map"))


def setgroups_allowed() -> bool:
    """Whether setgroups(2) may be used here (an unprivileged single-id map denies it)."""
    return read_text("/proc/self/setgroups").strip() != "deny"
