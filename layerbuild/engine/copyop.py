"""COPY and ADD as a step: heredoc sources, ADD's URLs and local archives, then copy semantics.

`engine/copysemantics.py` owns what Docker's COPY does with files; this module decides which
sources go which way (context files, heredocs, downloads, archives to unpack) and joins the
results.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from layerbuild.context.gitref import is_git_url, parse_git_url
from layerbuild.context.ignore import IgnoreRules
from layerbuild.context.select import SourceFile, select
from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.expand import expand_heredoc
from layerbuild.engine.copysemantics import DestTree, copy_changes
from layerbuild.errors import UnsafeArchiveError
from layerbuild.image.archive import archive_changes, is_archive
from layerbuild.image.changes import Change, ChangeKind, normalize_path, sorted_changes
from layerbuild.image.tree import FileTree

_URL_PREFIXES = ("http://", "https://")


@dataclass(frozen=True)
class CopyRequest:
    instr: ins.Copy | ins.Add  # expanded
    root: Path  # where sources are read: the context, a stage's rootfs, a named directory
    workdir: str
    ignore: IgnoreRules | None
    chown: tuple[int, int] | None
    preserve_owner: bool
    now: int
    env: Mapping[str, str]
    scratch: Path  # a private directory that lives until the layer is packed
    # sources already resolved in `root` (FileSteps.quick_key), by source as written
    selections: Mapping[str, list[SourceFile]] = field(default_factory=dict)


@dataclass(frozen=True)
class CopyResult:
    changes: list[Change]  # in layer order
    commits: tuple[str, ...] = ()  # what ADD's git sources resolved to, in source order


def run_copy(req: CopyRequest, tree: FileTree) -> CopyResult:
    """All Changes of one COPY/ADD step, and the commits of its git sources."""
    instr = req.instr
    heredocs = {f"<<{h.name}": h for h in instr.heredocs}
    inline = [(h.name, _heredoc_bytes(h, req)) for s in instr.sources if (h := heredocs.get(s))]
    plain = [s for s in instr.sources if s not in heredocs]
    is_add = isinstance(instr, ins.Add)
    gits = [s for s in plain if is_git_url(s)] if is_add else []
    urls = [s for s in plain if s.startswith(_URL_PREFIXES) and s not in gits] if is_add else []
    local = [s for s in plain if s not in urls and s not in gits]
    archives: list[SourceFile] = []
    if isinstance(instr, ins.Add) and instr.unpack is not False:
        local, archives = _split_archives(req, local)
    changes: list[Change] = []
    if local or inline:
        changes += _copy(req, tree, local, inline=inline)
    for url in urls:
        changes += _download(req, tree, url)
    for archive in archives:
        changes += _unpack(req, tree, archive)
    commits: list[str] = []
    for git in gits:
        more, commit = _git(req, tree, git)
        changes += more
        commits.append(commit)
    return CopyResult(sorted_changes(changes), tuple(commits))


def _copy(
    req: CopyRequest,
    tree: DestTree,
    sources: list[str],
    *,
    inline: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
    root: Path | None = None,
    chmod: str | None = None,
) -> list[Change]:
    instr = req.instr
    return copy_changes(
        root or req.root,
        sources,
        instr.dest,
        workdir=req.workdir,
        tree=tree,
        ignore=req.ignore if root is None else None,
        excludes=instr.excludes,
        chown=req.chown,
        chmod=instr.chmod or chmod,
        mtime=None,
        link=instr.link,
        preserve_owner=req.preserve_owner and root is None,
        inline=inline,
        now=req.now,
        parents=isinstance(instr, ins.Copy) and instr.parents and root is None,
        selected=req.selections if root is None else None,
    )


def _heredoc_bytes(h: ins.Heredoc, req: CopyRequest) -> bytes:
    # BuildKit expands heredoc bodies with the backslash escape whatever the directive says
    text = expand_heredoc(h, req.env) if h.expand else h.content
    return text.encode()


def _split_archives(req: CopyRequest, sources: list[str]) -> tuple[list[str], list[SourceFile]]:
    """ADD unpacks a local source that is a tar (plain or compressed); other files are copied."""
    plain: list[str] = []
    archives: list[SourceFile] = []
    for src in sources:
        matches = req.selections.get(src) or select(
            req.root, src, ignore=req.ignore, excludes=req.instr.excludes
        )
        files = [f for f in matches if f.rel == "" and f.st.st_mode & 0o170000 == 0o100000]
        if len(files) == len(matches) and files and all(_is_archive(f.path) for f in files):
            archives.extend(files)
        else:
            plain.append(src)
    return plain, archives


def _is_archive(path: Path) -> bool:
    with path.open("rb") as f:
        return is_archive(f.read(4096))


def _dest_dir(req: CopyRequest, tree: DestTree) -> str:
    dest = req.instr.dest
    joined = dest if dest.startswith("/") else posixpath.join(req.workdir or "/", dest)
    return tree.resolve(normalize_path(joined))


def _unpack(req: CopyRequest, tree: FileTree, archive: SourceFile) -> list[Change]:
    dest = _dest_dir(req, tree)
    spool = Path(tempfile.mkdtemp(prefix="add-", dir=req.scratch))
    changes = _parents(tree, dest, req.now)
    work = tree.copy()  # the image as the extraction sees it, earlier entries included
    work.apply(changes)
    seen = {c.path for c in changes}
    with archive.path.open("rb") as f:
        for i, ch in enumerate(archive_changes(f, dest, implied_parents=False)):
            if ch.kind is ChangeKind.FILE and ch.content is not None:
                ch = _spool(ch, spool / str(i))
            if req.chown is not None and ch.kind not in (ChangeKind.WHITEOUT, ChangeKind.OPAQUE):
                ch = _owned(ch, req.chown)
            placed = _extracted(work, ch, req.now, seen)
            work.apply(placed)
            changes += placed
    return changes


def _extracted(work: FileTree, ch: Change, now: int, seen: set[str]) -> list[Change]:
    """Where archive.Untar (chrooted, as Docker runs it) puts an entry: its parent resolved
    through the symlinks of the image and of earlier entries, so a merged-/usr `lib -> usr/lib`
    stays a link; missing parents made 0755 and existing ones kept as they are (a /tmp stays
    1777). A hard link's target is resolved the same way and must exist, as link(2) requires.
    Returns the parents not emitted yet, then the entry."""
    parent, name = posixpath.split(ch.path)
    where = work.resolve(parent) if parent else ""
    out = [p for p in _parents(work, where, now) if p.path not in seen]
    seen.update(p.path for p in out)
    placed = replace(ch, path=posixpath.join(where, name) if where else name)
    if ch.kind is ChangeKind.HARDLINK:
        link_parent, link_name = posixpath.split(ch.link)
        link = posixpath.join(work.resolve(link_parent), link_name) if link_parent else link_name
        target = work.lookup_nofollow(link)
        if target is None or target.kind is not ChangeKind.FILE:
            raise UnsafeArchiveError(
                f"archive hard link {ch.path!r} -> {ch.link!r}: the target is not a regular "
                "file of the archive or the image",
                hint="the archive is malformed; extract it yourself and COPY the files",
            )
        placed = replace(placed, link=link)
    return [*out, placed]


def _spool(ch: Change, path: Path) -> Change:
    """Keep an archive member's bytes past the iterator (the layer is packed after sorting)."""
    assert ch.content is not None
    with ch.content() as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return replace(ch, content=lambda: path.open("rb"))


def _owned(ch: Change, ids: tuple[int, int]) -> Change:
    return replace(ch, uid=ids[0], gid=ids[1])


def _parents(tree: FileTree, dest: str, now: int) -> list[Change]:
    """The directory `dest` and its ancestors as layer entries (existing ones keep metadata)."""
    out: list[Change] = []
    parts = dest.split("/") if dest else []
    for depth in range(1, len(parts) + 1):
        sub = "/".join(parts[:depth])
        existing = tree.lookup_nofollow(sub)
        if existing is not None and existing.kind is ChangeKind.DIR:
            out.append(existing)
        else:
            out.append(Change(sub, ChangeKind.DIR, 0o755, mtime=now))
    return out


def _git(req: CopyRequest, tree: DestTree, url: str) -> tuple[list[Change], str]:
    """ADD <git URL>: the repository's tree at the ref (its .git only with --keep-git-dir)
    copied into the destination as a directory's contents are, owned 0:0 unless --chown."""
    instr = req.instr
    assert isinstance(instr, ins.Add)
    from layerbuild.engine.gitsource import checkout  # the git command: only for ADD <git URL>

    ref = parse_git_url(url)
    if instr.checksum is not None:  # BuildKit: --checksum of a git source is its commit
        ref = replace(ref, commit=instr.checksum)
    where = Path(tempfile.mkdtemp(prefix="git-", dir=req.scratch)) / "repo"
    got = checkout(ref, where, keep_git_dir=instr.keep_git_dir)
    return _copy(req, tree, ["."], root=got.root), got.commit


def _download(req: CopyRequest, tree: DestTree, url: str) -> list[Change]:
    """ADD <url>: the file lands with mode 0600 (Docker's rule) unless --chmod says otherwise,
    with the server's Last-Modified as its mtime when it sends one."""
    instr = req.instr
    assert isinstance(instr, ins.Add)
    tmp = Path(tempfile.mkdtemp(prefix="url-", dir=req.scratch))
    from layerbuild.engine.fetch import fetch_url  # urllib, ssl: only for ADD <url>

    fetched = fetch_url(url, tmp, checksum=instr.checksum)
    staging = tmp / "stage"
    staging.mkdir()
    target = staging / fetched.filename
    fetched.path.rename(target)
    if fetched.mtime is not None:
        os.utime(target, (fetched.mtime, fetched.mtime))
    return _copy(req, tree, [fetched.filename], root=staging, chmod="600")
