"""User and group names -> numeric ids, read from the image's /etc/passwd and /etc/group text.

Two rule sets, both BuildKit's:

- ``COPY --chown`` (``resolve_chown``): a number alone means uid AND gid (``--chown=1000`` is
  1000:1000, no file consulted); a user name alone takes that user's primary group from passwd.
- ``USER`` for RUN (``resolve_user``): a number alone keeps the gid of the passwd entry with that
  uid, or 0 when there is none (libcontainer's GetExecUser with default 0:0).

- ``USER`` for the directories WORKDIR makes (``resolve_workdir_owner``): BuildKit makes them in a
  file op with ``llb.WithUser(USER)``, so a number alone is uid and gid, as for ``--chown``; a name
  is looked up as for RUN.

In all, ``user:group`` resolves each side by itself: numbers are taken as they are, names are
looked up, and an unknown name is an error saying which file lacked it.

Pure: the caller reads the files from the image (None when the image has no such file).
"""

from __future__ import annotations

from dataclasses import dataclass

from layerbuild.errors import BuildError


@dataclass(frozen=True)
class PasswdEntry:
    """A line of the stage's /etc/passwd."""

    name: str
    uid: int
    gid: int
    home: str = ""


@dataclass(frozen=True)
class GroupEntry:
    """A line of the stage's /etc/group."""

    name: str
    gid: int


def parse_passwd(text: str) -> list[PasswdEntry]:
    """Entries of an /etc/passwd file; malformed lines are skipped as libc does."""
    entries = []
    for fields in _records(text):
        if len(fields) >= 4 and fields[2].isdigit() and fields[3].isdigit():
            home = fields[5] if len(fields) > 5 else ""
            entries.append(PasswdEntry(fields[0], int(fields[2]), int(fields[3]), home))
    return entries


def parse_group(text: str) -> list[GroupEntry]:
    """Entries of an /etc/group file; malformed lines are skipped."""
    entries = []
    for fields in _records(text):
        if len(fields) >= 3 and fields[2].isdigit():
            entries.append(GroupEntry(fields[0], int(fields[2])))
    return entries


def _records(text: str) -> list[list[str]]:
    return [
        line.split(":")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def resolve_chown(spec: str, passwd: str | None, group: str | None) -> tuple[int, int]:
    """``--chown=user``, ``user:group``, ``uid`` or ``uid:gid`` -> (uid, gid)."""
    user, grp = _split(spec, "--chown")
    if _is_id(user):
        uid = gid = int(user)
    else:
        entry = _find_user(user, passwd, spec, "--chown")
        uid, gid = entry.uid, entry.gid
    if grp is not None:
        gid = _resolve_group(grp, group, spec, "--chown")
    return uid, gid


def resolve_user(spec: str, passwd: str | None, group: str | None) -> tuple[int, int]:
    """``USER`` value -> (uid, gid) for running a command."""
    user, grp = _split(spec, "USER")
    if _is_id(user):
        uid = int(user)
        match = [e for e in parse_passwd(passwd or "") if e.uid == uid]
        gid = match[0].gid if match else 0
    else:
        entry = _find_user(user, passwd, spec, "USER")
        uid, gid = entry.uid, entry.gid
    if grp is not None:
        gid = _resolve_group(grp, group, spec, "USER")
    return uid, gid


def resolve_workdir_owner(spec: str, passwd: str | None, group: str | None) -> tuple[int, int]:
    """``USER`` value -> (uid, gid) of the directories a WORKDIR makes."""
    user, grp = _split(spec, "USER")
    if _is_id(user) and grp is None:
        return int(user), int(user)
    return resolve_user(spec, passwd, group)


def _split(spec: str, what: str) -> tuple[str, str | None]:
    user, sep, grp = spec.strip().partition(":")
    if not user or (sep and not grp):
        raise BuildError(
            f"invalid {what} value {spec!r}: expected user, user:group, uid or uid:gid",
            hint="for example 1000:1000 or app:app",
        )
    return user, grp if sep else None


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _find_user(name: str, passwd: str | None, spec: str, what: str) -> PasswdEntry:
    for entry in parse_passwd(passwd or ""):
        if entry.name == name:
            return entry
    missing = "the image has no /etc/passwd" if passwd is None else "no such entry"
    raise BuildError(
        f"{what}={spec}: unable to find user {name!r} in /etc/passwd ({missing})",
        hint="create the user in an earlier RUN step (useradd/adduser), or use numeric ids",
    )


def _resolve_group(name: str, group: str | None, spec: str, what: str) -> int:
    if _is_id(name):
        return int(name)
    for entry in parse_group(group or ""):
        if entry.name == name:
            return entry.gid
    missing = "the image has no /etc/group" if group is None else "no such entry"
    raise BuildError(
        f"{what}={spec}: unable to find group {name!r} in /etc/group ({missing})",
        hint="create the group in an earlier RUN step (groupadd/addgroup), or use a numeric gid",
    )


def home_of(uid: int, passwd: str | None) -> str:
    """The home directory of `uid` in /etc/passwd; /root for root and / otherwise when the
    image does not say (what runc puts in HOME)."""
    for entry in parse_passwd(passwd or ""):
        if entry.uid == uid and entry.home:
            return entry.home
    return "/root" if uid == 0 else "/"
