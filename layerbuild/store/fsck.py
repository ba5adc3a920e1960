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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layerbuild.digest import Digest, is_digest
from layerbuild.errors import DigestMismatch, ImageFormatError, StoreError
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Index, Manifest
from layerbuild.plan.keys import CacheKey
from layerbuild.store.cacheindex import CacheRecord, link_problem
from layerbuild.store.crashsafe import pid_alive
from layerbuild.store.images import sniff_media_type
from layerbuild.store.leftovers import CACHE_TEMP_PREFIX, find_leftovers
from layerbuild.store.locking import DEFAULT_TIMEOUT, store_lock

if TYPE_CHECKING:
    from layerbuild.store.layout import Store

# What repair does about a problem (Problem.action), and how the report says it
REMOVE_BLOB = "remove-blob"
REMOVE_PATH = "remove-path"
DROP_RECORD = "drop-record"
UNTAG = "untag"
DROP_ENTRY = "drop-entry"
NOTHING = ""
_SAYS = {
    REMOVE_BLOB: ("remove the blob", "removed the blob"),
    REMOVE_PATH: ("remove it", "removed it"),
    DROP_RECORD: ("drop the record", "dropped the record"),
    UNTAG: ("remove the name", "removed the name"),
    DROP_ENTRY: ("remove the entry from index.json", "removed the entry from index.json"),
}
_ORDER = (UNTAG, DROP_ENTRY, DROP_RECORD, REMOVE_BLOB, REMOVE_PATH)  # names go before blobs

_SNIFF_LIMIT = 4 << 20  # manifests and indexes are small (as in images.py)
_IMAGE_CONFIGS = frozenset({mt.OCI_CONFIG, mt.DOCKER_CONFIG})
_JSON_START = b"{[ \t\r\n"
_CHUNK = 1 << 20
_HASH_THREADS = 4
_FILES_SUFFIX = ".files"  # a record's file summary beside it (cacheindex.py)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the store: what kind, where (relative to the root), what exactly,
    and what repair does about it (`action` on `target`; NOTHING when repair cannot help)."""

    kind: str
    where: str
    what: str
    action: str
    target: str

    def line(self, *, repaired: bool = False) -> str:
        if self.action == NOTHING:
            return f"{self.kind}: {self.where}: {self.what} (--repair cannot fix this)"
        would, did = _SAYS[self.action]
        if repaired:
            return f"repaired {self.kind}: {self.where}: {self.what} ({did})"
        return f"{self.kind}: {self.where}: {self.what} (--repair would {would})"


def _blob_where(digest: Digest) -> str:
    return f"blobs/sha256/{digest.hex}"


def _corrupt(digest: Digest, actual: str) -> Problem:
    what = f"content hashes to {actual}, not to its name"
    return Problem("corrupt blob", _blob_where(digest), what, REMOVE_BLOB, str(digest))


def _doomed(problems: Iterable[Problem]) -> frozenset[Digest]:
    return frozenset(Digest(p.target) for p in problems if p.action == REMOVE_BLOB)


# -- 1. blobs --------------------------------------------------------------------------------


def _hash_file(path: str) -> str:
    """The digest of the file at `path` ("" when it is gone: nothing left to judge)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb", buffering=0) as f:
            buf = bytearray(_CHUNK)
            view = memoryview(buf)
            while n := f.readinto(buf):
                h.update(view[:n])
    except FileNotFoundError:
        return ""
    return "sha256:" + h.hexdigest()


def check_blobs(store: Store) -> list[Problem]:
    """Blobs whose content does not hash to their name, and files in the blob directory that
    are not blobs at all."""
    problems: list[Problem] = []
    blobs: list[Digest] = []
    for entry in os.scandir(store.content.blob_dir):
        if is_digest("sha256:" + entry.name) and entry.is_file(follow_symlinks=False):
            blobs.append(Digest("sha256:" + entry.name))
        else:
            where = f"blobs/sha256/{entry.name}"
            what = "not a blob (its name is not a sha256 digest)"
            problems.append(Problem("stray file", where, what, REMOVE_PATH, entry.path))
    paths = [str(store.content.path(d)) for d in blobs]
    with ThreadPoolExecutor(max_workers=min(_HASH_THREADS, os.cpu_count() or 1)) as pool:
        for digest, actual in zip(blobs, pool.map(_hash_file, paths), strict=True):
            if actual and actual != digest:
                problems.append(_corrupt(digest, actual))
    return problems


# -- 2. manifests and indexes ----------------------------------------------------------------


@dataclass(frozen=True)
class _Json:
    """A small blob that reads as JSON: a manifest or index (media_type), or anything else."""

    digest: Digest
    data: bytes
    media_type: str | None


def _json_blobs(store: Store, skip: frozenset[Digest]) -> tuple[list[_Json], list[Problem]]:
    """The blobs that look like JSON, read (and so verified); corrupt ones as problems."""
    found: list[_Json] = []
    problems: list[Problem] = []
    for digest in store.content.digests():
        path = store.content.path(digest)
        try:
            if digest in skip or path.stat().st_size > _SNIFF_LIMIT:
                continue
            with path.open("rb") as f:
                head = f.read(1)
            if not head or head not in _JSON_START:
                continue
            data = store.content.read_bytes(digest)
        except FileNotFoundError:
            continue  # gone meanwhile (a gc that ran before our lock): nothing to judge
        except DigestMismatch as e:
            problems.append(_corrupt(digest, e.actual))
            continue
        found.append(_Json(digest, data, sniff_media_type(data)))
    return found, problems


def _part_problem(
    store: Store, desc: Descriptor, what: str, doomed: frozenset[Digest], says: str = "descriptor"
) -> str:
    """Why the blob `desc` names cannot serve (empty when it can)."""
    if desc.digest in doomed:
        return f"its {what} {desc.digest} is corrupt"
    try:
        size = store.content.size(desc.digest)
    except StoreError:
        return f"its {what} {desc.digest} is not in the store"
    if size != desc.size:
        return f"its {what} {desc.digest} is {size} bytes, the {says} says {desc.size}"
    return ""


def _config_problem(store: Store, manifest: Manifest) -> str:
    if manifest.config.media_type not in _IMAGE_CONFIGS:
        return ""  # an artifact or a cache manifest: its config is not an image config
    try:
        config = ImageConfig.from_bytes(store.content.read_bytes(manifest.config.digest))
    except (ImageFormatError, StoreError, KeyError, TypeError, ValueError) as e:
        return f"its config does not parse: {e}"
    if len(config.diff_ids) != len(manifest.layers):
        return (
            f"its config lists {len(config.diff_ids)} diff_ids for {len(manifest.layers)} layers"
        )
    return ""


def _manifest_problem(store: Store, blob: _Json, doomed: frozenset[Digest]) -> str:
    try:
        manifest = Manifest.from_bytes(blob.data, blob.media_type)
    except (ImageFormatError, KeyError, TypeError, ValueError) as e:
        return f"manifest does not parse: {e}"
    parts = [(manifest.config, "config"), *((d, "layer") for d in manifest.layers)]
    for desc, what in parts:
        if why := _part_problem(store, desc, what, doomed):
            return why
    bad_layers = [d for d in manifest.layers if d.media_type not in mt.LAYERS]
    if manifest.config.media_type in _IMAGE_CONFIGS and bad_layers:
        return f"its layer {bad_layers[0].digest} has media type {bad_layers[0].media_type}"
    return _config_problem(store, manifest)


def _index_problem(store: Store, blob: _Json, doomed: frozenset[Digest]) -> str:
    try:
        index = Index.from_bytes(blob.data)
    except (ImageFormatError, KeyError, TypeError, ValueError) as e:
        return f"index does not parse: {e}"
    present = [m for m in index.manifests if store.content.has(m.digest)]
    for desc in present:
        if why := _part_problem(store, desc, "manifest", doomed):
            return why
    if index.manifests and not present:
        return f"none of its {len(index.manifests)} manifests is in the store"
    return ""


def check_images(
    store: Store, doomed: frozenset[Digest], busy: frozenset[Digest]
) -> list[Problem]:
    """Manifests and indexes that are incomplete or malformed (blobs in `doomed` count as
    gone; blobs in `busy` are being written by a live process and are not judged)."""
    blobs, problems = _json_blobs(store, doomed)
    doomed = doomed | _doomed(problems)
    manifests = [b for b in blobs if b.media_type in mt.MANIFESTS and b.digest not in busy]
    indexes = [b for b in blobs if b.media_type in mt.INDEXES and b.digest not in busy]
    for kind, found, judge in (
        ("broken manifest", manifests, _manifest_problem),
        ("broken index", indexes, _index_problem),
    ):
        for blob in found:
            if why := judge(store, blob, doomed):
                where = _blob_where(blob.digest)
                problems.append(Problem(kind, where, why, REMOVE_BLOB, str(blob.digest)))
        doomed = doomed | _doomed(problems)  # an index of a broken manifest is broken too
    return problems


# -- 3. names --------------------------------------------------------------------------------


def _target_problem(store: Store, desc: Descriptor, doomed: frozenset[Digest]) -> str:
    if desc.digest in doomed:
        return f"points at {desc.digest}, which is broken"
    if not store.content.has(desc.digest):
        return f"points at {desc.digest}, which is not in the store"
    if desc.media_type not in mt.MANIFESTS and desc.media_type not in mt.INDEXES:
        return f"points at {desc.digest} of media type {desc.media_type}, not an image"
    return ""


def check_names(store: Store, doomed: frozenset[Digest]) -> list[Problem]:
    """Entries of index.json whose image is missing or broken."""
    try:
        named = store.refs.list()
        unnamed = store.refs.unnamed()
    except (StoreError, ImageFormatError, KeyError, TypeError, ValueError) as e:
        return [Problem("broken index.json", "index.json", str(e), NOTHING, "index.json")]
    problems = []
    for name, desc in named.items():
        if why := _target_problem(store, desc, doomed):
            problems.append(Problem("dangling name", f"index.json: {name}", why, UNTAG, name))
    for desc in unnamed:
        if why := _target_problem(store, desc, doomed):
            where = "index.json: unnamed entry"
            problems.append(Problem("dangling entry", where, why, DROP_ENTRY, str(desc.digest)))
    return problems


# -- 4. cache records ------------------------------------------------------------------------


def check_record(
    record: CacheRecord, path: Path, store: Store, doomed: frozenset[Digest]
) -> list[Problem]:
    """What is wrong with one parsed cache record (stored at `path`): every check of a
    record's fields is here, so a new field's check has one place to go."""
    where = str(path.relative_to(store.root))

    def problem(what: str) -> Problem:
        return Problem("broken cache record", where, what, DROP_RECORD, str(path))

    digest = record.key.digest
    if record.parent is None:
        what = "a record of an older cache format (no parent link): never used again"
        return [Problem("stale cache record", where, what, DROP_RECORD, str(path))]
    if path.name != f"{digest.hex}.{record.parent.hex}" or path.parent.name != digest.hex[:2]:
        return [problem(f"its file name does not say its key and parent ({digest})")]
    if CacheKey.of(record.key.inputs).digest != digest:
        return [problem("its key is not the digest of its inputs")]
    if why := link_problem(record, None):
        return [problem(why)]
    layer = record.layer
    if layer is None:
        return []
    if layer.media_type not in mt.LAYERS:
        return [problem(f"its layer has media type {layer.media_type}")]
    if why := _part_problem(store, layer.descriptor, "layer", doomed, says="record"):
        return [problem(why.removeprefix("its "))]
    if not record.config.diff_ids or record.config.diff_ids[-1] != layer.diff_id:
        return [problem(f"its config does not end with its layer's diff_id {layer.diff_id}")]
    return []


def _read_record(path: Path) -> tuple[CacheRecord | None, str]:
    """The record in `path`, or None and why it cannot be read."""
    try:
        obj: Any = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        return None, f"not a JSON record ({e})"
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    if obj.get("files") == "beside":  # the summary is in the sidecar (cacheindex.py)
        sidecar = path.with_name(path.name + _FILES_SUFFIX)
        try:
            summary = json.loads(sidecar.read_bytes())
        except (OSError, ValueError):
            return None, f"its file summary {sidecar.name} is missing or not JSON"
        if not isinstance(summary, dict):
            return None, f"its file summary {sidecar.name} is not a JSON object"
        obj = {**obj, "files": {}}
    try:
        return CacheRecord.from_json(obj), ""
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        return None, f"not a cache record ({type(e).__name__}: {e})"


def _record_files(store: Store) -> Iterator[Path]:
    keys = store.root / "cache" / "keys"
    if keys.is_dir():
        for path in sorted(keys.glob("*/*")):
            if not path.name.startswith(CACHE_TEMP_PREFIX):
                yield path


def check_records(store: Store, doomed: frozenset[Digest]) -> list[Problem]:
    """Cache records that cannot be read, or whose layer cannot serve (`check_record`), and
    file summaries whose record is gone."""
    problems: list[Problem] = []
    for path in _record_files(store):
        where = str(path.relative_to(store.root))
        if path.name.endswith(_FILES_SUFFIX):
            if not path.with_name(path.name.removesuffix(_FILES_SUFFIX)).exists():
                what = "file summary of a record that is not there"
                problems.append(Problem("orphan file", where, what, REMOVE_PATH, str(path)))
            continue
        record, why = _read_record(path)
        if record is None and not path.exists():
            continue  # removed meanwhile (a `cache prune` beside the check): not damage
        if record is None:
            problems.append(Problem("broken cache record", where, why, DROP_RECORD, str(path)))
        else:
            problems.extend(check_record(record, path, store, doomed))
    return problems


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
    problems += check_images(store, _doomed(problems), busy)
    problems += check_names(store, _doomed(problems))
    problems += check_records(store, _doomed(problems))
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
    for action in _ORDER:
        for p in (p for p in problems if p.action == action):
            if action == UNTAG:
                store.refs.delete(p.target)
            elif action == DROP_ENTRY:
                store.refs.drop_unnamed(Digest(p.target))
            elif action == DROP_RECORD:
                path = Path(p.target)
                path.unlink(missing_ok=True)
                path.with_name(path.name + _FILES_SUFFIX).unlink(missing_ok=True)
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
