"""plan_units, walk_units: the context listing cut into units, each walker's units packed
while they are walked.

On a no-change rebuild of a big context, the build waits for its walkers (context/prefetch.py):
one lstat per entry is the floor, and at 100,000 entries the Python around each lstat cost as
much again (a `os.stat_result` and a `DirEntry` kept per entry, then packed in a second pass).
Here each directory is opened once (O_NOFOLLOW, relative to its parent's descriptor), its
entries are `fstatat`'ed by name relative to it, so the kernel resolves one component instead
of the whole path, and each entry's record is packed as soon as it is read. The units'
shares, joined in unit order, are exactly what ``listing.share_of(taken_ns,
*select.walk_context(...))`` makes of the same tree (tests/unit/context/test_listwalk.py),
so listing fingerprints do not change.

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


# One unit of the walk, dealt to the walkers in turn: (its directory, relative to the root,
# "" for the root's own entries; the entry's name, "" for the root itself; whether everything
# below the entry comes with it)
Unit = tuple[str, str, bool]

WANTED_UNITS = 32  # fewer entries at the root: its directories' entries are dealt instead


def plan_units(root: str, ignore: IgnoreRules | None, wanted: int = WANTED_UNITS) -> list[Unit]:
    """The walk of the context at `root` (a real path) cut into units, in walk order.

    Walkers take every n-th unit, so the shares are even when the units are many and alike:
    the root's entries when there are `wanted` of them, else, in place of each directory among
    them that no `.dockerignore` pattern matches, that directory alone and then its entries
    (a monorepo's files sit under two or three top-level directories). A matched directory is
    never cut: whether it is listed depends on what comes back from below it."""
    try:
        os.lstat(root)
    except FileNotFoundError as exc:
        raise ContextError(f"the build context {root} does not exist") from exc
    except OSError as exc:
        raise _stat_error(root, exc) from exc
    fd = _open_dir(root, None, ".")
    try:
        names = _names(fd, "")
        units: list[Unit] = [("", "", False)]
        if len(names) >= wanted:
            return units + [("", name, True) for name in names]
        patterns = ignore.patterns if ignore is not None else ()
        for name in names:
            if not _cuttable(fd, name) or any(p.match(name) for p in patterns):
                units.append(("", name, True))
                continue
            below = _open_dir(name, fd, name)
            try:
                entries = _names(below, name)
            finally:
                os.close(below)
            units.append(("", name, False))
            units.extend((name, entry, True) for entry in entries)
        return units
    finally:
        os.close(fd)


def walk_units(
    root: str, ignore: IgnoreRules | None, units: Sequence[Unit], part: int, parts: int,
    taken_ns: int,
) -> list[Share]:  # fmt: skip
    """Walker `part` of `parts`: a share for each of its units (units[part::parts]), as
    ``listing.share_of(taken_ns, *select.walk_context(...))`` lists the same entries; the
    shares of all units, in unit order, join into the context's listing."""
    shares: list[Share] = []
    opened: dict[str, int] = {}
    try:
        for parent, name, whole in units[part::parts]:
            paths: list[str] = []
            records: list[bytes] = []
            ctimes: array[int] = array("q")
            if not name:
                _entry(None, root, "", paths, records, ctimes)
            else:
                fd = _opened(opened, root, parent)
                prefix = f"{parent}/" if parent else ""
                if not whole:
                    _entry(fd, name, prefix + name, paths, records, ctimes)
                elif ignore is None or not ignore.patterns:
                    _walk(fd, [name], prefix, paths, records, ctimes)
                else:  # the unit's directory is matched by no pattern, nor is the root
                    above = [False] * len(ignore.patterns)
                    _walk_visible(fd, [name], prefix, above, ignore, paths, records, ctimes)
            joined = "\0".join(paths).encode("utf-8", "surrogateescape")
            shares.append((taken_ns, len(paths), joined, b"".join(records), ctimes.tobytes()))
    finally:
        for fd in opened.values():
            os.close(fd)
    return shares


def _opened(opened: dict[str, int], root: str, parent: str) -> int:
    """The directory `parent` (relative to the root, one level deep at most), opened once."""
    if "" not in opened:
        opened[""] = _open_dir(root, None, ".")
    if parent not in opened:
        opened[parent] = _open_dir(parent, opened[""], parent)
    return opened[parent]


def _cuttable(fd: int, name: str) -> bool:
    """A directory, not a link to one."""
    try:
        return stat.S_ISDIR(os.lstat(name, dir_fd=fd).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise _stat_error(name, exc) from exc


def _entry(
    fd: int | None, name: str, rel: str, paths: list[str], records: list[bytes],
    ctimes: array[int],
) -> None:  # fmt: skip
    """Append the entry `name` alone (in the directory open at `fd`; `name` is the root's
    real path when `fd` is None); an entry gone since it was listed is left out."""
    try:
        st = os.lstat(name, dir_fd=fd)
    except (FileNotFoundError, NotADirectoryError):
        if fd is None:
            raise ContextError(f"the build context {name} does not exist") from None
        return
    except OSError as exc:
        raise _stat_error(rel or name, exc) from exc
    paths.append(rel)
    records.append(pack_lstat(st))
    ctimes.append(st.st_ctime_ns)


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
    matched this directory or a parent of it. Only patterns that can match at this depth are
    tried (`_depth`): `.git` or `*.log` is not tested against every file of a deep tree."""
    patterns = rules.patterns
    depth = prefix.count("/") + 1
    depths = [_depth(p) for p in patterns]
    reach = [d is None or d == depth for d in depths]
    live = [(p, hit) for p, hit, r in zip(patterns, above, reach, strict=True) if hit or r]
    for name in names:
        rel = prefix + name
        try:
            st = os.lstat(name, dir_fd=fd)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise _stat_error(rel, exc) from exc
        if not stat.S_ISDIR(st.st_mode):
            if not live or not _file_excluded(live, rel):
                paths.append(rel)
                records.append(pack_lstat(st))
                ctimes.append(st.st_ctime_ns)
            continue
        hits = [
            hit or (r and p.match(rel))
            for hit, p, r in zip(above, patterns, reach, strict=True)
        ]  # fmt: skip
        hidden = _excluded(patterns, hits)
        if hidden and not rules.may_include_below(rel):
            continue
        mark = len(paths)
        paths.append(rel)
        records.append(pack_lstat(st))
        ctimes.append(st.st_ctime_ns)
        below = _open_dir(name, fd, rel)
        try:
            entries = _names(below, rel)
            if not any(hits) and all(d is not None and d <= depth for d in depths):
                _walk(below, entries, rel + "/", paths, records, ctimes)  # no rule reaches
            else:
                _walk_visible(below, entries, rel + "/", hits, rules, paths, records, ctimes)
        finally:
            os.close(below)
        if hidden and len(paths) == mark + 1:  # nothing below came back: stays excluded
            del paths[mark:], records[mark:], ctimes[mark:]


def _depth(pattern: Pattern) -> int | None:
    """The number of path components every path `pattern` matches has; None when it may match
    paths of any depth (`**`, or a character class or escape that might match a slash)."""
    text = pattern.text
    if pattern.kind == "exact" or (
        pattern.kind == "regexp" and not any(c in text for c in "[\\") and "**" not in text
    ):
        return text.count("/") + 1
    return None


def _excluded(patterns: Sequence[Pattern], hits: list[bool]) -> bool:
    """`IgnoreRules.matches` from which patterns match the path or a parent: the last
    matching one decides."""
    excluded = False
    for pattern, hit in zip(patterns, hits, strict=True):
        if hit and pattern.exclusion == excluded:
            excluded = not pattern.exclusion
    return excluded


def _file_excluded(live: list[tuple[Pattern, bool]], rel: str) -> bool:
    """`_excluded` of a file, which hands nothing down, from the patterns that matched a
    parent or can match at its depth (in order, with whether they matched a parent): a pattern
    is matched against its path only when it could change the verdict, as
    `IgnoreRules.matches` does."""
    excluded = False
    for pattern, hit in live:
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


def _open_dir(name: str, parent: int | None, rel: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        raise ContextError(f"cannot list {rel!r}: {exc.strerror}", hint=os_hint(exc)) from exc


def _stat_error(rel: str, exc: OSError) -> ContextError:
    return ContextError(
        f"cannot stat {rel!r} in the build context: {exc.strerror}", hint=os_hint(exc)
    )
