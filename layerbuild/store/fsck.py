"""Checking the whole store (`layerbuild fsck`), and dropping what is broken (`--repair`).

The checks run in dependency order, and each stage treats what an earlier stage condemned as
gone, so one pass finds a broken blob *and* everything that needs it:

1. blobs: every file under ``blobs/sha256`` hashes to its name (streamed, on a few threads,
   since hashlib releases the GIL); skipped with ``quick``, except for the small JSON blobs that
   stage 2 reads anyway (reading verifies them).
2. images: every manifest has its config and layers, with the sizes it states, its config
   parses and lists one diff_id per layer; an index has at least one of its manifests (a pulled
   index keeps only the platform that was pulled, as containerd's do), each of the right size.
3. names: every ``index.json`` entry points at a manifest or index that is present and sound.
4. cache records: each one parses, is filed under its own key, and its layer is present, sound,
   of the size it states, and is the last diff_id of the config it records (`check_record`).
5. leftovers of dead processes (leftovers.py): temp files and directories (``ingest/``,
   ``tmp/build-*``, ``roots/``, temp files beside ``index.json``, cache temp files idle for an
   hour) and uncommitted snapshots (``snapshots/tmp-*``, ``snapshots/layers/tmp-*``).

Blobs that a live process named in a GC root (a pull or cache import under way) are not judged
incomplete: their parts may still be arriving. Each finding is a `Problem` saying what repair
does about it; `repair` only does those things, so nothing the checks found sound is touched.
Locking is the caller's (`run`): shared to check, exclusive to repair, like a build and gc.

Modules: `Problem` and the repair actions are in fsckproblem.py, stages 1-3 in fsckimages.py,
stage 4 in fsckrecords.py; stage 5, the order of the whole check and repair are here.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from layerbuild.digest import Digest, is_digest
from layerbuild.store.crashsafe import pid_alive
from layerbuild.store.fsckimages import check_blobs, check_images, check_names
from layerbuild.store.fsckproblem import (
    DROP_ENTRY,
    DROP_RECORD,
    REMOVE_BLOB,
    REMOVE_PATH,
    REPAIR_ORDER,
    UNTAG,
    Problem,
    doomed_digests,
)
from layerbuild.store.fsckrecords import FILES_SUFFIX, check_records
from layerbuild.store.leftovers import find_leftovers
from layerbuild.store.locking import DEFAULT_TIMEOUT, store_lock

if TYPE_CHECKING:
    from layerbuild.store.layout import Store


# -- 5. leftovers of dead processes ----------------------------------------------------------


def check_leftovers(store: Store, *, now: float | None = None) -> list[Problem]:
    """Temp files and uncommitted snapshots left by processes that are gone."""
    return [
        Problem(f.kind, os.path.relpath(f.path, store.root), f.what, REMOVE_PATH, str(f.path))
        for f in find_leftovers(store.root, now=now)
    ]


# -- the whole check, repair, and locking ----------------------------------------------------


def busy_digests(root: Path) -> frozenset[Digest]:
    """Digests named in GC roots of live processes (read only: gc, not fsck, deletes the
    files of dead ones, which check_leftovers reports)."""
    out: set[Digest] = set()
    roots = root / "roots"
    if roots.is_dir():
        for entry in os.scandir(roots):
            pid = entry.name.partition("-")[0]
            if pid.isdigit() and pid_alive(int(pid)):
                with contextlib.suppress(FileNotFoundError):
                    text = Path(entry.path).read_text(encoding="ascii", errors="replace")
                    out.update(Digest(w) for w in text.split() if is_digest(w))
    return frozenset(out)


def check(store: Store, *, quick: bool = False) -> list[Problem]:
    """Every problem in the store; `quick` skips re-hashing blobs that are not JSON."""
    store.content.drop_corrupt = False  # reads drop corrupt blobs; fsck reports them first
    problems = [] if quick else check_blobs(store)
    busy = busy_digests(store.root)
    problems += check_images(store, doomed_digests(problems), busy)
    problems += check_names(store, doomed_digests(problems))
    problems += check_records(store, doomed_digests(problems))
    problems += check_leftovers(store)
    return problems


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        from layerbuild.store.layers import remove_tree  # overlay work dirs are mode 000

        remove_tree(path)
    else:
        path.unlink(missing_ok=True)


def repair(store: Store, problems: Sequence[Problem]) -> list[Problem]:
    """Do what each problem says repair does (names first, then records, blobs, leftovers);
    returns the problems repaired. The caller holds the store lock exclusive."""
    done: list[Problem] = []
    for action in REPAIR_ORDER:
        for p in (p for p in problems if p.action == action):
            if action == UNTAG:
                store.refs.delete(p.target)
            elif action == DROP_ENTRY:
                store.refs.drop_unnamed(Digest(p.target))
            elif action == DROP_RECORD:
                path = Path(p.target)
                path.unlink(missing_ok=True)
                path.with_name(path.name + FILES_SUFFIX).unlink(missing_ok=True)
            elif action == REMOVE_BLOB:
                store.content.delete(Digest(p.target))
            else:
                _remove_path(Path(p.target))
            done.append(p)
    return done


@dataclass(frozen=True)
class FsckResult:
    found: tuple[Problem, ...]  # what the check found
    repaired: tuple[Problem, ...]  # what repair fixed (empty without --repair)
    remaining: tuple[Problem, ...]  # what is still wrong afterwards


def run(
    store: Store, *, fix: bool = False, quick: bool = False, timeout: float = DEFAULT_TIMEOUT
) -> FsckResult:
    """Check the store under its lock (shared: builds go on); with `fix`, under the exclusive
    lock (gc's), repair what was found and check again."""
    with store_lock(store.root, shared=not fix, timeout=timeout):
        found = tuple(check(store, quick=quick))
        if not fix or not found:
            return FsckResult(found, (), found)
        repaired = tuple(repair(store, found))
        # blobs that hashed right stay right: the second look need not hash them again
        return FsckResult(found, repaired, tuple(check(store, quick=True)))
