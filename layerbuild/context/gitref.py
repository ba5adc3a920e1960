"""Git URLs as a build context and as an ADD source, in the forms BuildKit accepts
(util/gitutil ParseGitRef and ParseURL).

- `http://`, `https://`: a git repository only when the path ends in `.git` (otherwise ADD
  downloads the URL as a file);
- `git://`, `ssh://`: always;
- the scp-like `[user@]host:path`, which git itself takes as ssh, only with a `user@` (as
  BuildKit's implicit-ssh rule), so `C:/x` or `name:tag` stay local paths.

A fragment picks what is checked out: `#REF[:SUBDIR]` (REF a branch, tag or commit; SUBDIR a
directory of the repository to use as the root), or the keyed form
`##ref=REF,subdir=DIR,commit=HASH`. Parsing is pure; checking out is engine/gitsource.py.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from layerbuild.errors import ContextError

_SCHEME = re.compile(r"^([a-zA-Z0-9]+)://")
_SCP = re.compile(r"^[A-Za-z0-9_.+-]+@[A-Za-z0-9.-]+:[^#]")
_GIT_SCHEMES = ("git", "ssh")
_HTTP_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class GitRef:
    """A repository and what of it to use: `remote` as git takes it (no fragment)."""

    remote: str
    ref: str | None  # branch, tag or commit; None: the remote's default branch
    subdir: str  # "" for the repository's root, else a relative path without ".."
    commit: str | None = None  # from `##commit=`: the ref must resolve to this commit

    @property
    def name(self) -> str:
        """How messages name the source: the remote (password hidden) and the ref."""
        shown = _hide_password(self.remote)
        return f"{shown}#{self.ref}" if self.ref else shown


def _hide_password(text: str) -> str:
    password = urlsplit(text).password if _SCHEME.match(text) else None
    return text.replace(f":{password}@", ":***@", 1) if password else text


def is_git_url(text: str) -> bool:
    """Whether BuildKit would take `text` as a git source rather than a path or a plain URL."""
    scheme = _SCHEME.match(text)
    if scheme is None:
        return _SCP.match(text) is not None
    kind = scheme.group(1).lower()
    if kind in _GIT_SCHEMES:
        return True
    if kind in _HTTP_SCHEMES:
        return urlsplit(text).path.endswith(".git")
    return False


def parse_git_url(text: str) -> GitRef:
    """The GitRef of a git URL (`is_git_url` true); ContextError for a malformed fragment."""
    remote, _, fragment = text.partition("#")
    if fragment.startswith("#"):
        ref, subdir, commit = _keyed_fragment(text, fragment[1:])
    else:
        ref_text, _, subdir = fragment.partition(":")
        ref, commit = ref_text or None, None
    return GitRef(remote=remote, ref=ref, subdir=_subdir(text, subdir), commit=commit)


def _keyed_fragment(text: str, fragment: str) -> tuple[str | None, str, str | None]:
    values: dict[str, str] = {}
    for field in filter(None, fragment.split(",")):
        key, sep, value = field.partition("=")
        if not sep or key.lower() not in ("ref", "subdir", "commit"):
            raise ContextError(
                f"git URL {_hide_password(text)!r}: {field!r} is not ref=, subdir= or commit=",
                hint="write the fragment as ##ref=REF,subdir=DIR,commit=HASH or #REF:DIR",
            )
        values[key.lower()] = value
    commit = values.get("commit") or None
    return values.get("ref") or commit, values.get("subdir", ""), commit


def _subdir(text: str, subdir: str) -> str:
    clean = posixpath.normpath(subdir.strip("/")) if subdir.strip("/") else ""
    if clean == ".":
        return ""
    if clean == ".." or clean.startswith("../"):
        raise ContextError(
            f"git URL {_hide_password(text)!r}: the subdirectory {subdir!r} leaves the repository",
            hint="name a directory inside the repository after the ':'",
        )
    return clean
