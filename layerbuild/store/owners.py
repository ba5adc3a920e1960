"""Owners of unpacked files: set by uid 0, also root of a rootless user namespace.

Real root sets any owner. Root of a user namespace (sandbox/userns.py) sets the owners its
namespace maps, which with subordinate ids are container ids 0..65535; an owner beyond them is
an UnmappedOwnerError naming the entry and the id (podman and buildah fail the same way rather
than build an image whose owners silently differ). In a namespace without subordinate ids only
root is mapped: other owners cannot be kept, the files stay root's, and one note says so. A
plain unprivileged user sets no owner at all.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from layerbuild import privilege
from layerbuild.errors import UnmappedOwnerError


class Owners:
    """Sets owners for one unpack; `note` receives what could not be kept."""

    def __init__(self, note: Callable[[str], None]) -> None:
        self.note = note
        self.enabled = os.geteuid() == 0
        self.single_ns = self.enabled and privilege.single_id_namespace()
        self.dropped = False  # the one note about dropped owners was given

    def set(
        self, entry: str, uid: int, gid: int, target: int | str, dirfd: int | None = None
    ) -> None:
        """Give `target` (a descriptor, or a name in `dirfd`, not followed) uid:gid."""
        if not self.enabled:
            return
        try:
            if isinstance(target, int):
                os.fchown(target, uid, gid)
            else:
                os.chown(target, uid, gid, dir_fd=dirfd, follow_symlinks=False)
        except OSError as e:
            if e.errno != errno.EINVAL:  # EINVAL: an id this user namespace does not map
                raise
            self._unmapped(entry, uid, gid)

    def settle(self, entry: str, uid: int, gid: int, mode: int, fd: int) -> None:
        """Give the open file `fd` uid:gid and `mode` (0o7777 bits), changing only what is not
        so already: on ext4 a chown and a chmod cost more kernel time than creating and writing
        a small file, and a file is mostly created with its final owner and mode already."""
        st = os.fstat(fd)
        chowned = False
        if self.enabled and (st.st_uid, st.st_gid) != (uid, gid):
            self.set(entry, uid, gid, fd)
            chowned = True
        if chowned or st.st_mode & 0o7777 != mode:
            os.fchmod(fd, mode)  # after chown, which clears setuid/setgid bits

    def _unmapped(self, entry: str, uid: int, gid: int) -> None:
        if self.single_ns:
            if not self.dropped:
                self.dropped = True
                self.note(
                    f"{entry}: owner {uid}:{gid} not kept, nor any other owner but root in this "
                    "layer (the user namespace maps only your own id: no subordinate ids)"
                )
            return
        mapped = privilege.mapped_ids()
        raise UnmappedOwnerError(
            f"layer entry {entry!r} is owned by {uid}:{gid}, which the rootless user namespace "
            f"does not map (it maps ids 0..{mapped - 1})",
            hint="give your user a larger range in /etc/subuid and /etc/subgid (at least "
            f"{max(uid, gid) + 1} ids), or build as root",
        )
