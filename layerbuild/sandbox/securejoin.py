"""Resolve an in-container path under a rootfs the way the container would see it.

A mount target such as ``/etc/resolv.conf`` or a ``RUN --mount`` target is a path *inside* the
image, and the image may make any component a symlink (``/etc/resolv.conf ->
../run/systemd/resolve/stub-resolv.conf`` is common; ``/data -> /etc`` on the host would be an
attack). Mounting onto ``rootfs + path`` lets the kernel follow such a link on the host: that
is BuildKit CVE-2024-23651/23652 and Buildah CVE-2024-1753. Like runc's filepath-securejoin we
resolve every symlink ourselves, scoped to the rootfs: an absolute target restarts at the rootfs,
``..`` never climbs above it. The result contains no symlink at the time of the call; the sandbox
calls this before the command starts, when nothing untrusted runs that could swap a component.
"""

from __future__ import annotations

import os
import posixpath
import stat

from layerbuild.errors import SandboxError

_MAX_LINKS = 255  # the kernel's own limit is 40 per lookup; be generous, but finite


def secure_join(root: str, path: str) -> str:
    """`root` joined with the container path `path`, every symlink resolved inside `root`.

    Missing components are allowed (the result names where they would be created).
    """
    pending = [p for p in path.split("/") if p not in ("", ".")]
    pending.reverse()
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        host = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(host)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise SandboxError(
                f"too many symlinks resolving {path!r} in the image",
                hint="the image has a symlink loop at a mount target",
            )
        target = os.readlink(host)
        if target.startswith("/"):
            resolved = []
        pending.extend(reversed([p for p in target.split("/") if p not in ("", ".")]))
    return posixpath.join(root, *resolved) if resolved else root
