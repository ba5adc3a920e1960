"""Stages 1-3 of `layerbuild fsck` (store/fsck.py has the order and why): blobs hash to
their names, manifests and indexes are complete and sound, and every name points at one."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from layerbuild.digest import Digest, is_digest
from layerbuild.errors import DigestMismatch, ImageFormatError, StoreError
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Index, Manifest
from layerbuild.store.fsckproblem import (
    DROP_ENTRY,
    NOTHING,
    REMOVE_BLOB,
    REMOVE_PATH,
    UNTAG,
    Problem,
    blob_where,
    corrupt_blob,
    doomed_digests,
)
from layerbuild.store.images import sniff_media_type

if TYPE_CHECKING:
    from layerbuild.store.layout import Store


_SNIFF_LIMIT = 4 << 20  # manifests and indexes are small (as in images.py)
_IMAGE_CONFIGS = frozenset({mt.OCI_CONFIG, mt.DOCKER_CONFIG})
_JSON_START = b"{[ \t\r\n"
_CHUNK = 1 << 20
_HASH_THREADS = 4


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
                problems.append(corrupt_blob(digest, actual))
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
            problems.append(corrupt_blob(digest, e.actual))
            continue
        found.append(_Json(digest, data, sniff_media_type(data)))
    return found, problems


def part_problem(
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
        if why := part_problem(store, desc, what, doomed):
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
        if why := part_problem(store, desc, "manifest", doomed):
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
    doomed = doomed | doomed_digests(problems)
    manifests = [b for b in blobs if b.media_type in mt.MANIFESTS and b.digest not in busy]
    indexes = [b for b in blobs if b.media_type in mt.INDEXES and b.digest not in busy]
    for kind, found, judge in (
        ("broken manifest", manifests, _manifest_problem),
        ("broken index", indexes, _index_problem),
    ):
        for blob in found:
            if why := judge(store, blob, doomed):
                where = blob_where(blob.digest)
                problems.append(Problem(kind, where, why, REMOVE_BLOB, str(blob.digest)))
        doomed = doomed | doomed_digests(problems)  # an index of a broken manifest is broken too
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
