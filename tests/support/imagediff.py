"""Compare two unpacked images: their root filesystems entry by entry, and their configs.

Name: Entry, listing, diff_listings, config_view.
Scope: tests/integration/test_buildkit_compare.py (an image layerbuild built against the same
       Dockerfile built by BuildKit); reads only what umoci unpacked and the config JSON.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Entry:
    """What the comparison sees of one path: everything but its times.

    mtimes are left out on purpose: BuildKit keeps the context's mtimes and stamps RUN output
    with the time it ran, while layerbuild can clamp them to SOURCE_DATE_EPOCH so that layers
    are reproducible (docs/commands.md); two builds minutes apart can never agree on them.
    """

    kind: str  # "f", "d", "l", or "c"/"b"/"p"/"s" for special files
    mode: str  # permission bits with setuid/setgid/sticky, octal
    owner: str  # "uid:gid"
    size: int  # regular files only, else 0
    content: str  # sha256 of a regular file, symlink target, or "major,minor" of a device
    links: tuple[str, ...] = ()  # every path of the tree sharing this regular file's inode

    def describe(self) -> str:
        parts = [self.kind, self.mode, self.owner, str(self.size), self.content]
        if self.links:
            parts.append("links=" + ",".join(self.links))
        return " ".join(parts)


def listing(root: Path) -> dict[str, Entry]:
    """path ("/etc/passwd") -> Entry for every path under `root`, symlinks not followed."""
    raw: dict[str, tuple[os.stat_result, str]] = {}
    inodes: dict[int, list[str]] = defaultdict(list)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = "/" + str(path.relative_to(root))
            st = path.lstat()
            raw[rel] = (st, _content(path, st))
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                inodes[st.st_ino].append(rel)
    result = {}
    for rel, (st, content) in raw.items():
        group = inodes.get(st.st_ino, []) if stat.S_ISREG(st.st_mode) else []
        result[rel] = Entry(
            kind=_kind(st.st_mode),
            mode=f"{stat.S_IMODE(st.st_mode):04o}",
            owner=f"{st.st_uid}:{st.st_gid}",
            size=st.st_size if stat.S_ISREG(st.st_mode) else 0,
            content=content,
            links=tuple(sorted(group)) if len(group) > 1 else (),
        )
    return result


def _kind(mode: int) -> str:
    for test, letter in (
        (stat.S_ISREG, "f"), (stat.S_ISDIR, "d"), (stat.S_ISLNK, "l"), (stat.S_ISCHR, "c"),
        (stat.S_ISBLK, "b"), (stat.S_ISFIFO, "p"), (stat.S_ISSOCK, "s"),
    ):  # fmt: skip
        if test(mode):
            return letter
    raise AssertionError(f"unknown file type {mode:o}")


def _content(path: Path, st: os.stat_result) -> str:
    if stat.S_ISREG(st.st_mode):
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    if stat.S_ISLNK(st.st_mode):
        return "-> " + os.readlink(path)
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return f"{os.major(st.st_rdev)},{os.minor(st.st_rdev)}"
    return ""


def diff_listings(ours: dict[str, Entry], theirs: dict[str, Entry]) -> list[str]:
    """One line per path that differs ("path: ours | theirs"), empty when the trees agree."""
    lines = []
    for path in sorted(ours.keys() | theirs.keys()):
        a, b = ours.get(path), theirs.get(path)
        if a != b:
            left = a.describe() if a else "(missing)"
            right = b.describe() if b else "(missing)"
            lines.append(f"{path}: layerbuild {left} | buildkit {right}")
    return lines


CONFIG_FIELDS = (
    "Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes",
    "StopSignal", "Healthcheck", "Shell", "OnBuild",
)  # fmt: skip


def config_view(image_config: dict[str, Any]) -> dict[str, Any]:
    """The parts of an image config both builders set from the Dockerfile.

    An absent field and an empty one mean the same to a runtime, and the two builders differ in
    which they write (Docker's config writes `"Cmd": null`, OCI omits the key), so empty values
    are dropped. `layers` counts history entries that made a layer.
    """
    conf = image_config.get("config") or {}
    view = {key: conf[key] for key in CONFIG_FIELDS if conf.get(key) not in (None, "", [], {})}
    history = image_config.get("history") or []
    view["layers"] = sum(1 for h in history if not h.get("empty_layer"))
    view["diff_ids"] = len(image_config.get("rootfs", {}).get("diff_ids", []))
    return view
