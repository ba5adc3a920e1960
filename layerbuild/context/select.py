"""Resolve one COPY/ADD source inside a root: paths, globs, directories, exclusions.

The root is either the build context (filtered by .dockerignore) or another stage's rootfs.
Nothing outside the root is ever opened or stat'ed: symlinks met while resolving the source are
followed *inside* the root, clamped like a chroot (containerd's fs.RootPath), and symlinks met
while walking are returned as symlinks, never followed.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from layerbuild.context.ignore import IgnoreRules, go_clean, go_match
from layerbuild.context.lstat import Lstat, Stat, compact
from layerbuild.context.rootpath import read_in_root
from layerbuild.errors import BadPattern, ContextError
from layerbuild.hosterrors import os_hint

_MAX_LINKS = 255
_NOT_FOUND_HINT = (
    "source paths are relative to the build context (or the --from stage's root); "
    "check the spelling and that no .dockerignore pattern excludes the file"
)


@dataclass(slots=True)  # not frozen: frozen __init__ cost a fifth of a big walk; immutable
class SourceFile:
    """One entry to copy.

    ``rel`` is the path relative to the matched source: '' for the match itself, 'a/b' for an
    entry found below a matched directory. ``source`` is the match as named in the root
    (before following a final symlink); its base name is the file name used at the destination.
    ``path`` is the real location to read, always inside the root; ``st`` is its lstat.
    """

    rel: str
    real: str  # ``path`` as a string: a Path per entry is a third of a big walk's cost
    st: Lstat
    source: str = ""

    @property
    def path(self) -> Path:
        return Path(self.real)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)


def load_ignore(context_dir: Path, dockerfile: Path | None) -> IgnoreRules:
    """The .dockerignore rules of a build: ``<Dockerfile>.dockerignore`` beside the Dockerfile
    takes precedence over ``<context>/.dockerignore``; neither present means no rules.

    Each is read as BuildKit's frontend reads it (frontend/dockerui/config.go, from a
    snapshot of the Dockerfile's directory or of the context): a symlink is followed inside
    that directory only, and one that leads nowhere there, or to something that is not a
    regular file, counts as no file at all."""
    candidates = []
    if dockerfile is not None:
        candidates.append((dockerfile.parent, dockerfile.name + ".dockerignore"))
    candidates.append((context_dir, ".dockerignore"))
    for root, name in candidates:
        try:
            data = read_in_root(root, name)
        except OSError as exc:
            raise ContextError(
                f"cannot read {root / name}: {exc.strerror}", hint=os_hint(exc)
            ) from exc
        if data is not None:
            source = str(root / name)
            return IgnoreRules.parse(data.decode("utf-8", "surrogateescape"), source=source)
    return IgnoreRules(patterns=(), source=".dockerignore")


def select(
    root: Path,
    pattern: str,
    *,
    ignore: IgnoreRules | None,
    excludes: Sequence[str],
    follow_final_symlink: bool = True,
) -> list[SourceFile]:
    """All entries one COPY source names, matches in order, each followed by its walked tree.

    ContextError when nothing matches, naming the source and the .dockerignore possibility.
    """
    view = _ContextView(Path(os.path.realpath(root)), ignore)
    exclude = IgnoreRules.from_patterns(excludes) if excludes else None
    rel = go_clean("/" + pattern).lstrip("/")
    base, wildcard = split_wildcards(rel)
    if wildcard:
        matches = _glob(view, base, wildcard, exclude)
        if not matches:
            raise ContextError(
                f"no source files were specified: nothing in the build context matches "
                f"{pattern!r}",
                hint=_NOT_FOUND_HINT,
            )
    else:
        matches = [base]
    out: list[SourceFile] = []
    for match in matches:
        out.extend(_select_one(view, match, pattern, exclude, follow_final_symlink))
    return out


def literal_source(pattern: str) -> str | None:
    """The root-relative path a COPY source without wildcards names ('' for the root itself),
    before any symlink in it is followed; None for a glob."""
    base, wildcard = split_wildcards(go_clean("/" + pattern).lstrip("/"))
    return None if wildcard else base


def split_wildcards(rel: str) -> tuple[str, str]:
    """Split at the first component holding a wildcard: (literal dir, pattern rest)."""
    parts = [] if rel in ("", ".") else rel.split("/")
    for i, part in enumerate(parts):
        if _has_wildcard(part):
            return "/".join(parts[:i]), "/".join(parts[i:])
    return "/".join(parts), ""


def _has_wildcard(name: str) -> bool:
    i = 0
    while i < len(name):
        if name[i] == "\\":
            i += 1
        elif name[i] in "*?[":
            return True
        i += 1
    return False


class _ContextView:
    """The root as COPY sees it: entries excluded by .dockerignore do not exist."""

    def __init__(self, root: Path, ignore: IgnoreRules | None) -> None:
        self.root = root
        self._root = str(root).rstrip("/") or ""  # "" for "/": joins below give "/rel"
        self.ignore = ignore if ignore is not None and ignore.patterns else None

    def real(self, rel: str) -> Path:
        return self.root / rel if rel else self.root

    def lstat(self, rel: str) -> os.stat_result | None:
        # a plain string join: building a Path per entry cost a third of a big COPY's walk
        path = f"{self._root}/{rel}" if rel else str(self.root)
        try:
            return os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise ContextError(
                f"cannot stat {rel!r} in the source root: {exc.strerror}", hint=os_hint(exc)
            ) from exc

    def listdir(self, rel: str) -> list[str]:
        try:
            return sorted(os.listdir(self.real(rel)))
        except OSError as exc:
            raise ContextError(
                f"cannot list {rel or '.'!r}: {exc.strerror}", hint=os_hint(exc)
            ) from exc

    def scan(self, rel: str) -> list[tuple[str, str, Lstat]]:
        """(name, real path, lstat) of a directory's entries, sorted by name; an entry that
        vanishes while listed is left out."""
        out = []
        stat_of = compact
        try:
            with os.scandir(f"{self._root}/{rel}" if rel else str(self.root)) as it:
                for entry in it:
                    try:
                        st = stat_of(entry.stat(follow_symlinks=False))
                        out.append((entry.name, entry.path, st))
                    except (FileNotFoundError, NotADirectoryError):
                        continue
                    except OSError as exc:
                        raise ContextError(
                            f"cannot stat {entry.path!r} in the source root: {exc.strerror}",
                            hint=os_hint(exc),
                        ) from exc
        except OSError as exc:
            raise ContextError(
                f"cannot list {rel or '.'!r}: {exc.strerror}", hint=os_hint(exc)
            ) from exc
        out.sort()
        return out

    def ignored(self, rel: str) -> bool:
        return self.ignore is not None and self.ignore.matches(rel)

    def visible(self, rel: str, st: Stat) -> bool:
        """A path is in the context unless ignored; an ignored dir stays if a child does."""
        if not self.ignored(rel):
            return True
        if not stat.S_ISDIR(st.st_mode):
            return False
        assert self.ignore is not None
        if not self.ignore.may_include_below(rel):
            return False
        for name in self.listdir(rel):
            child = f"{rel}/{name}" if rel else name
            child_st = self.lstat(child)
            if child_st is not None and self.visible(child, child_st):
                return True
        return False

    def resolve(self, rel: str, *, follow_final: bool) -> str:
        """Follow symlinks component by component, clamped to the root (fs.RootPath)."""
        pending = [p for p in rel.split("/") if p not in ("", ".")]
        done: list[str] = []
        links = 0
        while pending:
            part = pending.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = "/".join([*done, part])
            st = self.lstat(candidate)
            is_final = not pending
            if st is None or not stat.S_ISLNK(st.st_mode) or (is_final and not follow_final):
                done.append(part)
                continue
            links += 1
            if links > _MAX_LINKS:
                raise ContextError(f"too many levels of symbolic links resolving {rel!r}")
            # the target is cleaned against the link's directory before it is walked, as
            # fs.RootPath does: in `l -> b/../c`, `..` undoes `b` even when b is a link
            target = os.readlink(self.real(candidate))
            base = "" if target.startswith("/") else "/".join(done)
            done = []
            clean = posixpath.normpath(f"/{base}/{target}")
            pending = [p for p in clean.split("/") if p] + pending
        return "/".join(done)


def _glob(view: _ContextView, base: str, wildcard: str, exclude: IgnoreRules | None) -> list[str]:
    """Paths below base (context-relative, sorted walk order) whose rest matches wildcard."""
    real_base = view.resolve(base, follow_final=True)
    base_st = view.lstat(real_base)
    if base_st is None or not stat.S_ISDIR(base_st.st_mode):
        return []
    max_depth = wildcard.count("/") + 1  # '*' and '?' never match '/', so deeper cannot match
    found: list[str] = []

    def walk(rel_dir: str, depth: int) -> None:
        for name in view.listdir(f"{real_base}/{rel_dir}".strip("/")):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            ctx_rel = f"{real_base}/{rel}" if real_base else rel
            st = view.lstat(ctx_rel)
            if st is None or not view.visible(ctx_rel, st):
                continue
            try:
                hit = go_match(wildcard, rel)
            except BadPattern as exc:
                raise ContextError(f"invalid source pattern {wildcard!r}: {exc}") from exc
            if hit:
                # --exclude also filters the matches of a glob, by their name below the base
                if exclude is None or not exclude.matches(rel):
                    found.append(f"{base}/{rel}" if base else rel)
            elif stat.S_ISDIR(st.st_mode) and depth < max_depth:
                walk(rel, depth + 1)

    walk("", 1)
    return found


def _select_one(
    view: _ContextView,
    match: str,
    pattern: str,
    exclude: IgnoreRules | None,
    follow_final: bool,
) -> list[SourceFile]:
    real = view.resolve(match, follow_final=follow_final)
    st = view.lstat(real)
    if st is None or not view.visible(real, st):
        raise ContextError(
            f"file not found in build context or excluded by .dockerignore: "
            f"stat {pattern}: file does not exist",
            hint=_NOT_FOUND_HINT,
        )
    top = SourceFile(rel="", real=str(view.real(real)), st=compact(st), source=match)
    if not stat.S_ISDIR(st.st_mode):
        return [top]
    if view.ignore is None and exclude is None:
        return [top, *_walk_all(view, real, "", match)]
    return [top, *_walk(view, real, "", match, exclude)]


def walk_context(
    root: Path, ignore: IgnoreRules | None, part: int, parts: int
) -> tuple[list[str], list[Stat]]:
    """Share `part` of `parts` of what ``select(root, ".")`` returns, as (paths, lstats), so
    that several processes can walk one context: share 0 starts with the root itself, and
    each share holds the trees of its slice of the root's sorted entries. The shares joined
    in order are the whole selection."""
    view = _ContextView(Path(os.path.realpath(root)), ignore)
    entries = view.scan("")
    size = -(-len(entries) // parts)
    mine = entries[part * size : (part + 1) * size]
    paths: list[str] = []
    stats: list[Stat] = []
    if part == 0:
        root_st = view.lstat("")
        if root_st is None:
            raise ContextError(f"the build context {root} does not exist")
        paths.append("")
        stats.append(root_st)
    if view.ignore is not None:
        files = _walk(view, "", "", ".", None, entries=mine)
        return paths + [f.rel for f in files], stats + [f.st for f in files]
    for name, real, st in mine:
        paths.append(name)
        stats.append(st)
        if stat.S_ISDIR(st.st_mode):
            _list_all(real, name + "/", paths, stats)
    return paths, stats


def _list_all(real: str, prefix: str, paths: list[str], stats: list[Stat]) -> None:
    """`_walk_all` for `walk_context`, which needs only names and lstat: a lean loop, as
    it is all a no-change rebuild of a big context waits for."""
    try:
        with os.scandir(real) as it:
            entries = sorted([(e.name, e.stat(follow_symlinks=False)) for e in it])
    except OSError as exc:
        raise ContextError(f"cannot list {real!r}: {exc.strerror}", hint=os_hint(exc)) from exc
    isdir = stat.S_ISDIR
    for name, st in entries:
        paths.append(prefix + name)
        stats.append(st)
        if isdir(st.st_mode):
            _list_all(f"{real}/{name}", f"{prefix}{name}/", paths, stats)


def _walk_all(
    view: _ContextView,
    ctx_dir: str,
    src_dir: str,
    match: str,
    entries: list[tuple[str, str, Lstat]] | None = None,
) -> list[SourceFile]:
    """`_walk` when neither .dockerignore nor --exclude can hide anything: the hot loop of a
    big COPY's selection, kept minimal."""
    out: list[SourceFile] = []
    append, isdir = out.append, stat.S_ISDIR
    for name, real, st in view.scan(ctx_dir) if entries is None else entries:
        src_rel = f"{src_dir}/{name}" if src_dir else name
        append(SourceFile(src_rel, real, st, match))
        if isdir(st.st_mode):
            out += _walk_all(view, f"{ctx_dir}/{name}" if ctx_dir else name, src_rel, match)
    return out


def _walk(
    view: _ContextView,
    ctx_dir: str,
    src_dir: str,
    match: str,
    exclude: IgnoreRules | None,
    entries: list[tuple[str, str, Lstat]] | None = None,
) -> list[SourceFile]:
    """Entries below a matched directory, sorted depth-first, symlinks not followed.

    A directory that is excluded (by .dockerignore or --exclude) is still listed when an
    exception re-includes something inside it, as BuildKit does.
    """
    out: list[SourceFile] = []
    for name, real, st in view.scan(ctx_dir) if entries is None else entries:
        ctx_rel = f"{ctx_dir}/{name}" if ctx_dir else name
        src_rel = f"{src_dir}/{name}" if src_dir else name
        hidden = view.ignored(ctx_rel)
        excluded = exclude is not None and exclude.matches(src_rel)
        entry = SourceFile(src_rel, real, st, match)
        if not stat.S_ISDIR(st.st_mode):
            if not hidden and not excluded:
                out.append(entry)
            continue
        if hidden and view.ignore is not None and not view.ignore.may_include_below(ctx_rel):
            continue
        if excluded and exclude is not None and not exclude.may_include_below(src_rel):
            continue
        below = _walk(view, ctx_rel, src_rel, match, exclude)
        if below or not (hidden or excluded):
            out.append(entry)
            out.extend(below)
    return out
