"""What the file-changing steps (COPY, ADD, WORKDIR) will write, computed before the cache is
asked: the key of such a step depends on the Changes themselves (content, modes, owners).
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from layerbuild.context.fingerprint import selection_fingerprint
from layerbuild.context.gitref import is_git_url
from layerbuild.context.ignore import IgnoreRules
from layerbuild.context.select import SourceFile, literal_source, select
from layerbuild.dockerfile import instructions as ins
from layerbuild.engine import meta as m
from layerbuild.engine.sources import SourceResolver
from layerbuild.engine.stagetrees import StageTrees
from layerbuild.engine.state import StageState
from layerbuild.engine.users import home_of, resolve_chown, resolve_user, resolve_workdir_owner
from layerbuild.errors import BuildError
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.tree import FileTree
from layerbuild.plan.graph import ImageBase, StageBase
from layerbuild.store.layout import Store

if TYPE_CHECKING:
    from layerbuild.context.listing import ContextListing
    from layerbuild.context.prefetch import ListingPrefetch


@dataclass
class FileSteps:
    """Computes COPY/ADD/WORKDIR Changes for the stages of one build."""

    store: Store
    sources: SourceResolver
    context: Path
    ignore: IgnoreRules | None
    scratch: Path
    now: int
    results: dict[int, StageState] = field(default_factory=dict)
    read_only: bool = False  # a dry run: the layers' entries are not kept in the store
    trees: StageTrees = field(init=False)  # loaded on first need: most steps never look

    def __post_init__(self) -> None:
        self.trees = StageTrees(self.store, keep_entries=not self.read_only)

    def tree(self, state: StageState) -> FileTree:
        return self.trees.tree(state)

    def workdir_changes(self, state: StageState, instr: ins.Workdir) -> list[Change]:
        """The directories WORKDIR must create (none when it exists), owned by USER."""
        path = m.resolve_workdir(state.meta.workdir, instr.path).lstrip("/")
        if not path:
            return []
        tree = self.tree(state)
        existing = tree.lookup(path)
        if existing is not None and existing.kind is ChangeKind.DIR:
            return []
        user = state.meta.config.config.user
        owner = resolve_workdir_owner(user, *self._passwd_group(state)) if user else (0, 0)
        return workdir_dirs(tree, path, *owner, self.now)

    def user_ids(self, state: StageState) -> tuple[int, int]:
        user = state.meta.config.config.user
        if not user:
            return 0, 0
        return resolve_user(user, *self._passwd_group(state))

    def home(self, state: StageState, uid: int) -> str:
        return home_of(uid, self._passwd_group(state)[0])

    def _passwd_group(self, state: StageState) -> tuple[str | None, str | None]:
        # the layers added since the tree was brought up to date are left pending unless one
        # of them touched /etc: a RUN after a big COPY only wants HOME from /etc/passwd
        loaded = self.trees.loaded(state)
        if loaded is None or any(touches(c, "etc") for c in loaded[1]):
            tree = self.tree(state)
        else:
            tree = loaded[0]
        texts = []
        for path in ("etc/passwd", "etc/group"):
            from layerbuild.engine.imageread import read_file

            data = read_file(self.store, state.layers, tree, path)
            texts.append(data.decode("utf-8", "replace") if data is not None else None)
        return texts[0], texts[1]

    def copy_changes(
        self,
        state: StageState,
        instr: ins.Copy | ins.Add,
        source: StageBase | ImageBase | None,
        quick: QuickKey | None = None,
    ) -> tuple[list[Change], str]:
        """The Changes of a COPY/ADD and the key of where its sources come from. `quick`, when
        given, lends the selections it already made, so the files keyed are the files copied."""
        if isinstance(instr, ins.Add) and instr.checksum and not _remote(instr.sources):
            raise BuildError(
                "ADD --checksum only applies to URL and git sources",
                hint="remove --checksum, or ADD the file from an http(s) or git URL",
            )
        root, preserve_owner, ignore, source_key = self._copy_root(source)
        selections = quick.chosen(root, instr.sources) if quick is not None else {}
        chown = None
        if instr.chown:
            needs_names = not all(p.isdigit() for p in instr.chown.split(":"))
            texts = self._passwd_group(state) if needs_names else (None, None)
            chown = resolve_chown(instr.chown, *texts)
        # the copy machinery (archives, downloads, codecs) is loaded by the first full COPY
        from layerbuild.engine.copyop import CopyRequest, run_copy

        request = CopyRequest(
            instr=instr,
            root=root,
            workdir=state.meta.workdir,
            ignore=ignore,
            chown=chown,
            preserve_owner=preserve_owner,
            now=self.now,
            env=state.scope.expansion_env(),
            scratch=self.scratch,
            selections=selections,
        )
        result = run_copy(request, self.tree(state))
        # a git source keys on the commit its ref resolved to, beside the files it gave
        commits = "".join(f" git:{commit}" for commit in result.commits)
        return result.changes, source_key + commits

    def quick_key(
        self,
        state: StageState,
        instr: ins.Copy | ins.Add,
        source: StageBase | ImageBase | None,
        prefetch: ListingPrefetch | None = None,
    ) -> QuickKey | None:
        """Everything a COPY/ADD's Changes depend on, short of reading file contents: the
        parent key (which fixes the image it lands in: dest, passwd for --chown, WORKDIR), the
        expanded instruction, where it copies from, and the lstat of every selected entry.
        None when the step reads something a stat cannot vouch for (URLs). `prefetch`: the
        context walked ahead (context/prefetch.py), whose listing sums up literal sources."""
        started = time.time_ns()
        heredocs = {f"<<{h.name}" for h in instr.heredocs}
        plain = [s for s in instr.sources if s not in heredocs]
        if isinstance(instr, ins.Add) and any(
            s.startswith(_NOT_LOCAL) or is_git_url(s) for s in plain
        ):
            return None
        h = hashlib.sha256(b"layerbuild.quickkey.v1\n")
        for part in (str(state.key), ins.describe(instr)):
            h.update(part.encode("utf-8", "surrogateescape") + b"\0")
        if heredocs:  # their bodies are expanded with the stage's variables, not in the key
            env = sorted(state.scope.expansion_env().items())
            h.update(repr(env).encode("utf-8", "surrogateescape"))
        if isinstance(source, StageBase):
            result = self.results[source.index]
            key = f"stage:{result.key}"  # the sources digest says what the files are
            h.update(result.source_ref().encode())  # here nothing is read: its result decides
            return QuickKey(h.digest(), key, 0, started, {})
        named = source is not None and source.named_context
        directory = self.sources.directory(source.ref) if source is not None and named else None
        if source is not None and directory is None:
            desc = self.sources.image(source.ref, named_context=source.named_context)
            key = f"image:{desc.digest}"
            h.update(key.encode())
            return QuickKey(h.digest(), key, 0, started, {})
        root, ignore = (directory, None) if directory is not None else (self.context, self.ignore)
        key = f"dir:{directory}" if directory is not None else "context"
        h.update(f"{key}\0{root}".encode("utf-8", "surrogateescape"))
        listed = None
        if directory is None and not instr.excludes:
            listed = self._listed(plain, prefetch)
        if listed is not None:
            taken, prints, listing = listed
            h.update(b"listing\0" + b"".join(fingerprint for fingerprint, _ in prints))
            newest = max(latest for _, latest in prints)
            return QuickKey(h.digest(), key, newest, taken, {}, listed=True, listing=listing)
        selections = {
            src: select(root, src, ignore=ignore, excludes=instr.excludes) for src in plain
        }
        fingerprint, newest = selection_fingerprint(list(selections.items()))
        h.update(fingerprint)
        return QuickKey(h.digest(), key, newest, started, selections)

    def _listed(
        self, sources: list[str], prefetch: ListingPrefetch | None
    ) -> tuple[int, list[tuple[bytes, int]], ContextListing] | None:
        """(when the walk started, each source's listing fingerprint, the listing), from
        the prefetched context listing; None unless it holds every source: each names a path
        literally (no glob), found without and not being a symlink. Waits for the walkers when
        a source is a directory (the whole context or one in it): its own walk would do again,
        on the same cores, much of what they are doing. A file is one lstat: no wait for it."""
        if prefetch is None or not prefetch.covers(self.context, self.ignore):
            return None
        paths = [literal_source(src) for src in sources]
        if not paths or None in paths:
            return None
        listing = prefetch.get(wait=any(_is_directory(self.context, p or "") for p in paths))
        if listing is None:
            return None
        prints = [listing.fingerprint(path or "") for path in paths]
        if any(p is None for p in prints):
            return None
        return listing.taken_ns, [p for p in prints if p is not None], listing

    def _copy_root(
        self, source: StageBase | ImageBase | None
    ) -> tuple[Path, bool, IgnoreRules | None, str]:
        """(root, keep owners, ignore rules, key) of a COPY's source."""
        if source is None:
            return self.context, False, self.ignore, "context"
        if isinstance(source, StageBase):
            result = self.results[source.index]
            return self.sources.stage_rootfs(result.layers), True, None, f"stage:{result.key}"
        if source.named_context and (directory := self.sources.directory(source.ref)):
            # a local directory is a context like the main one: owners reset to 0:0
            return directory, False, None, f"dir:{directory}"
        desc = self.sources.image(source.ref, named_context=source.named_context)
        root = self.sources.rootfs_of(source.ref, named_context=source.named_context)
        return root, True, None, f"image:{desc.digest}"


@dataclass(frozen=True)
class QuickKey:
    """A COPY/ADD summed up without reading file contents (`FileSteps.quick_key`): an equal
    digest means equal Changes, so the sources digest recorded for it can be reused."""

    digest: bytes
    source_key: str  # as `_copy_root` names it in the step's key
    newest_ns: int  # the newest mtime/ctime among the selected entries (0: none on disk)
    taken_ns: int  # wall clock before the first lstat
    selections: dict[str, list[SourceFile]]
    listed: bool = False  # summed up from the prefetched context listing
    listing: ContextListing | None = None  # that listing, which also gives the selections

    def chosen(self, root: Path, sources: tuple[str, ...]) -> dict[str, list[SourceFile]]:
        """The selections the key was taken from, by source as written: those it made, or
        those the listing it was summed up from gives (made on a miss only: a hit needs
        none). Sources the listing cannot give are left out (selected by a walk)."""
        if self.selections or self.listing is None:
            return self.selections
        real = os.path.realpath(root)
        out = {}
        for source in sources:
            path = literal_source(source)
            chosen = self.listing.selection(real, path) if path is not None else None
            if chosen is not None:
                out[source] = chosen
        return out


_NOT_LOCAL = ("http://", "https://", "git@", "git://", "ssh://")


def workdir_dirs(tree: FileTree, path: str, uid: int, gid: int, mtime: int) -> list[Change]:
    """The layer of a WORKDIR whose directory is missing: BuildKit resolves the path in the
    rootfs first (symlinks followed, the last one too: continuity's fs.RootPath), then makes
    what is missing there (fsutil's MkdirAll, mode 0755, owned by USER). A link on the way stays
    a link, its target is made; each existing ancestor comes along with its metadata."""
    resolved = tree.resolve(path)
    changes: list[Change] = []
    parts = resolved.split("/")
    for depth in range(1, len(parts) + 1):
        sub = "/".join(parts[:depth])
        # the components of a resolved path are no links: what is there is what lookup sees
        existing = tree.lookup_nofollow(sub)
        if existing is None:
            changes.append(Change(sub, ChangeKind.DIR, 0o755, uid, gid, mtime=mtime))
        elif existing.kind is ChangeKind.DIR:
            changes.append(replace(existing, path=sub))
        else:
            raise BuildError(
                f"WORKDIR /{path}: cannot make directory /{resolved}: /{sub} is a "
                f"{existing.kind.value} in the image (mkdir: not a directory)",
                hint="choose another WORKDIR, or remove that path in an earlier step",
            )
    return changes


def touches(changes: list[Change], top: str) -> bool:
    """Whether any change is `top` or below it (a whiteout or an opaque marker included)."""
    below = top + "/"
    return any(c.path == top or c.path.startswith(below) for c in changes)


def _remote(sources: tuple[str, ...]) -> bool:
    return any(s.startswith(("http://", "https://")) or is_git_url(s) for s in sources)


def _is_directory(root: Path, rel: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(root / rel).st_mode)
    except OSError:
        return False
