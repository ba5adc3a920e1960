"""Why a rootless RUN could not switch users: the hint for a step that failed for want of ids.

Without subordinate ids a rootless build's user namespace maps the caller alone (docs/run.md,
"Rootless"): root is all there is, and the kernel refuses setgroups. Programs that drop
privileges then fail with errors that do not name the cause — apt's "setgroups 65534 failed",
"seteuid 42 failed" (it fetches as `_apt`), su, runuser, chown to another id. When a failed
step's output shows such an error in such a namespace, the build says what is missing.
"""

from __future__ import annotations

import pwd
import re

from layerbuild.privilege import is_identity_map, mapped_count, read_text

# the libc call or tool named in the error, then the errno text EPERM or EINVAL gives
_ID_ERROR = re.compile(
    r"\b(setgroups|setgid|setuid|setegid|seteuid|setresgid|setresuid|chown|lchown|initgroups)"
    r"\b.*(Operation not permitted|Invalid argument)"
)


def single_id_hint(tail: list[str], uid_map: str) -> str | None:
    """The hint for a step whose output `tail` shows a failed switch of ids in a namespace
    whose /proc/self/uid_map text `uid_map` maps one id, else None."""
    if not uid_map or is_identity_map(uid_map) or mapped_count(uid_map) != 1:
        return None
    if not any(_ID_ERROR.search(line) for line in tail):
        return None
    fields = uid_map.split()
    user = _name(int(fields[1])) if len(fields) == 3 and fields[1].isdigit() else "USER"
    return (
        "this rootless build maps only your own user id (no range for "
        f"{user} in /etc/subuid and /etc/subgid), so a step cannot switch to another user or "
        "group (apt fetches as _apt; USER, su and chown need other ids too): as root, run "
        f"`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}` (choose a "
        "range no other user has) and install uidmap (newuidmap, newgidmap)"
    )


def current_hint(tail: list[str]) -> str | None:
    """single_id_hint for this process's own namespace."""
    return single_id_hint(tail, read_text("/proc/self/uid_map"))


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
