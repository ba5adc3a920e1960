"""walk_share: one walker's share of the context listing, packed while it is walked.

On a no-change rebuild of a big context, the build waits for its walkers (context/prefetch.py):
one lstat per entry is the floor, and at 100,000 entries the Python around each lstat cost as
much again (a `os.stat_result` and a `DirEntry` kept per entry, then packed in a second pass).
Here each directory is opened once (O_NOFOLLOW, relative to its parent's descriptor), its
entries are `fstatat`'ed by name relative to it, so the kernel resolves one component instead
of the whole path, and each entry's record is packed as soon as it is read. The share is
exactly what ``listing.share_of(taken_ns, *select.walk_context(...))`` makes of the same tree
(tests/unit/context/test_listwalk.py), so listing fingerprints do not change.

`.dockerignore` rules are applied as select's walk applies them (an excluded directory is
still listed when an exception re-includes something inside it), with one shortcut:
`IgnoreRules.matches` tests a path and each of its parents against every pattern, while here
each directory hands down which patterns matched it or a parent, so an entry is tested against
its own path only. The verdict is the same (last matching pattern wins); the cost per entry no
longer grows with its depth.
"""

from __future__ import annotations

import os
import stat
from array import array
from collections.abc import Sequence

from layerbuild.context.fingerprint import ENTRY_STRUCT, pack_lstat
from layerbuild.context.ignore import IgnoreRules, Pattern
from layerbuild.context.listing import Share
from layerbuild.errors import ContextError
from layerbuild.hosterrors import os_hint

# a directory is never reached through a symlink, even one swapped in after its lstat
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def walk_share(
    root: str, ignore: IgnoreRules | None, part: int, parts: int, taken_ns: int
) -> Share:
    """Share `part` of `parts` of the listing of the context at `root` (a real path): share 0
    starts with the root itself, and each share holds the trees of its slice of the root's
    sorted entries, as `select.walk_context` cuts them."""
    paths: list[str] = []
    records: list[bytes] = []
    ctimes: array[int] = array("q")
    if part == 0:
        try:
            st = os.lstat(root)
        except FileNotFoundError as exc:
            raise ContextError(f"the build context {root} does not exist") from exc
        except OSError as exc:
            raise _stat_error(root, exc) from exc
        paths.append("")
        records.append(pack_lstat(st))
        ctimes.append(st.st_ctime_ns)
    fd = _open_dir(root, None, ".")
    try:
        names = [name for name in _names(fd, "") if _exists(fd, name)]
        size = -(-len(names) // parts)
        mine = names[part * size : (part + 1) * size]
        if ignore is None or not ignore.patterns:
            _walk(fd, mine, "", paths, records, ctimes)
        else:
            above = [False] * len(ignore.patterns)  # the root is never excluded
            _walk_visible(fd, mine, "", above, ignore, paths, records, ctimes)
    finally:
        os.close(fd)
    joined = "\0".join(paths).encode("utf-8", "surrogateescape")
    return (taken_ns, len(paths), joined, b"".join(records), ctimes.tobytes())


def _walk(
    fd: int,
    names: list[str],
    prefix: str,
    paths: list[str],
    records: list[bytes],
    ctimes: array[int],
) -> None:
    """Append `names` of the directory open at `fd` and everything below them, depth first
    in name order. The hot loop of a big context: kept flat on purpose."""
    pack, lstat, isdir = ENTRY_STRUCT.pack, os.lstat, stat.S_ISDIR
    for name in names:
        try:
            st = lstat(name, dir_fd=fd)
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed since it was listed
        except OSError as exc:
            raise _stat_error(prefix + name, exc) from exc
        ctime = st.st_ctime_ns
        records.append(
            pack(
                st.st_dev,
                st.st_ino,
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_size,
                st.st_mtime_ns,
                ctime,
            )
        )
        ctimes.append(ctime)
        paths.append(prefix + name)
        if isdir(st.st_mode):
            below = _open_dir(name, fd, prefix + name)
            try:
                _walk(
                    below, _names(below, prefix + name), f"{prefix}{name}/", paths, records, ctimes
                )
            finally:
                os.close(below)


def _walk_visible(
    fd: int,
    names: list[str],
    prefix: str,
    above: list[bool],
    rules: IgnoreRules,
    paths: list[str],
    records: list[bytes],
    ctimes: array[int],
) -> None:
    """`_walk` of what `rules` leave visible (select's `_walk`): a file unless excluded, a
    directory unless excluded with nothing re-included below it. `above[i]`: pattern i
    matched this directory or a parent of it."""
    patterns = rules.patterns
    for name in names:
        rel = prefix + name
        try:
            st = os.lstat(name, dir_fd=fd)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise _stat_error(rel, exc) from exc
        if not stat.S_ISDIR(st.st_mode):
            if not _file_excluded(patterns, above, rel):
                paths.append(rel)
                records.append(pack_lstat(st))
                ctimes.append(st.st_ctime_ns)
            continue
        hits = [hit or p.match(rel) for hit, p in zip(above, patterns, strict=True)]
        hidden = _excluded(patterns, hits)
        if hidden and not rules.may_include_below(rel):
            continue
        mark = len(paths)
        paths.append(rel)
        records.append(pack_lstat(st))
        ctimes.append(st.st_ctime_ns)
        below = _open_dir(name, fd, rel)
        try:
            _walk_visible(
                below, _names(below, rel), rel + "/", hits, rules, paths, records, ctimes
            )
        finally:
            os.close(below)
        if hidden and len(paths) == mark + 1:  # nothing below came back: stays excluded
            del paths[mark:], records[mark:], ctimes[mark:]


def _excluded(patterns: Sequence[Pattern], hits: list[bool]) -> bool:
    """`IgnoreRules.matches` from which patterns match the path or a parent: the last
    matching one decides."""
    excluded = False
    for pattern, hit in zip(patterns, hits, strict=True):
        if hit and pattern.exclusion == excluded:
            excluded = not pattern.exclusion
    return excluded


def _file_excluded(patterns: Sequence[Pattern], above: list[bool], rel: str) -> bool:
    """`_excluded` of a file, which hands nothing down: a pattern is matched against its
    path only when it could change the verdict, as `IgnoreRules.matches` does."""
    excluded = False
    for pattern, hit in zip(patterns, above, strict=True):
        if pattern.exclusion == excluded and (hit or pattern.match(rel)):
            excluded = not pattern.exclusion
    return excluded


def _names(fd: int, rel: str) -> list[str]:
    try:
        names = os.listdir(fd)
    except OSError as exc:
        raise ContextError(
            f"cannot list {rel or '.'!r}: {exc.strerror}", hint=os_hint(exc)
        ) from exc
    names.sort()
    return names


def _exists(fd: int, name: str) -> bool:
    try:
        os.lstat(name, dir_fd=fd)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise _stat_error(name, exc) from exc
    return True


def _open_dir(name: str, parent: int | None, rel: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        raise ContextError(f"cannot list {rel!r}: {exc.strerror}", hint=os_hint(exc)) from exc


def _stat_error(rel: str, exc: OSError) -> ContextError:
    return ContextError(
        f"cannot stat {rel!r} in the build context: {exc.strerror}", hint=os_hint(exc)
    )
