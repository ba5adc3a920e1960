"""--cache-from: a cache image's records into this store's cache index, its blobs verified.

Import happens before the build's first step, eagerly, so lookups hit exactly as if this store
had built the steps. A source that fails is a warning and a miss (moby/buildkit#2836); a
source's records are installed only once all of its blobs are in the store and verified, so a
failed source leaves no record behind; faults of this store stay errors (faultplace.py).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from layerbuild.digest import Digest
from layerbuild.errors import CacheError, DigestMismatch, ImageFormatError, RegistryError
from layerbuild.hosterrors import host_error
from layerbuild.image import mediatypes as mt
from layerbuild.image.manifest import Index
from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.reference import parse_reference
from layerbuild.registry.remotecache.faultplace import store_fault
from layerbuild.registry.remotecache.records import MAX_CONFIG, cache_manifest, read_records
from layerbuild.registry.remotecache.spec import (
    CacheSpec,
    CacheTransfer,
    Note,
    Outcome,
)
from layerbuild.store.cacheindex import CacheIndex, CacheRecord
from layerbuild.store.layout import Store


def _install(store: Store, records: Iterable[CacheRecord]) -> int:
    """Put the records this store lacks (or cannot use) into its index; how many."""
    index = CacheIndex(store.root)
    count = 0
    for record in records:
        if record.parent is None:
            continue
        have = index.get_digest(record.key.digest, record.parent)
        usable = have is not None and (have.layer is None or store.content.has(have.layer.digest))
        if usable:
            continue
        if record.layer is not None and not store.content.has(record.layer.digest):
            continue
        index.put(record)
        count += 1
    return count


def import_local(store: Store, src: Path, note: Note) -> int | None:
    """Import the cache layout at `src`; the number of records added, None when there is no
    cache there yet."""
    index_path = src / "index.json"
    if not index_path.is_file():
        note(f"no cache at {src} yet; building without it")
        return None
    try:
        index = Index.from_bytes(index_path.read_bytes())
        entry = next(m for m in index.manifests if m.media_type == mt.OCI_MANIFEST)
    except (OSError, StopIteration, ImageFormatError, TypeError, AttributeError) as e:
        raise CacheError(f"{src} is not a cache written by --cache-to: {e}") from None
    manifest = cache_manifest(_local_blob(store, src, entry.digest), mt.OCI_MANIFEST, str(src))
    _local_blob(store, src, manifest.config.digest)
    config = store.content.read_bytes(manifest.config.digest)
    records = read_records(manifest, config, str(src), note)
    for record in records:
        if record.layer is not None and not store.content.has(record.layer.digest):
            _local_blob(store, src, record.layer.digest)
    return _install(store, records)


def _local_blob(store: Store, src: Path, digest: Digest) -> bytes:
    """Copy one blob of the layout into the store, verified; its bytes when small."""
    if not store.content.has(digest):
        path = src / "blobs" / digest.algorithm / digest.hex
        try:
            f = path.open("rb")
        except FileNotFoundError:
            raise CacheError(
                f"the cache at {src} lacks blob {digest}",
                hint="export it again with --cache-to; the directory is incomplete",
            ) from None
        except OSError as e:  # a directory where the blob should be, a denied read, ...
            raise CacheError(f"blob {digest} of the cache at {src} cannot be read: {e}") from None
        # write errors come from the ingest, in this store: not the cache's, so not caught
        with f, store.content.ingest() as ingest:
            shutil.copyfileobj(f, ingest, 1 << 20)
            try:
                ingest.commit(expected=digest)
            except DigestMismatch as e:
                raise CacheError(
                    f"blob {digest} in the cache at {src} is corrupt: {e.message}"
                ) from None
    if store.content.size(digest) > MAX_CONFIG:
        return b""
    return store.content.read_bytes(digest)


def import_registry(store: Store, ref: str, options: RegistryOptions, note: Note) -> int | None:
    """Pull the cache manifest `ref` with its config and layers; the number of records added,
    None when the registry has no cache under `ref` yet."""
    from layerbuild.registry.client import RegistryClient  # http.client and ssl: only when used
    from layerbuild.registry.pull import fetch_blobs

    reference = parse_reference(ref)
    client = RegistryClient(reference.registry, options)
    repo = reference.repository
    try:
        with store.gc_root() as root:
            try:
                fetched = client.get_manifest(repo, reference.digest or reference.tag or "latest")
            except RegistryError as e:
                if e.status != 404:
                    raise
                note(f"no cache at {ref} yet; building without it")
                return None
            root.add(fetched.digest)
            manifest = cache_manifest(fetched.data, fetched.media_type, ref)
            root.add(manifest.config.digest, *(d.digest for d in manifest.layers))
            fetch_blobs(store, client, repo, [manifest.config])
            config = store.content.read_bytes(manifest.config.digest)
            records = read_records(manifest, config, ref, note)
            wanted = {r.layer.digest for r in records if r.layer is not None}
            fetch_blobs(store, client, repo, [d for d in manifest.layers if d.digest in wanted])
            return _install(store, records)
    finally:
        client.close()


# What a --cache-from source can do wrong: not answer, refuse, send what does not verify or
# does not parse. Each is a miss; anything else (this store's faults, bugs) is not caught.
_SOURCE_FAULTS = (RegistryError, ImageFormatError, CacheError)


def import_caches(
    store: Store,
    specs: Sequence[CacheSpec],
    registry: RegistryOptions | None,
    note: Note = lambda message: None,
    outcome: Outcome = lambda transfer: None,
) -> int:
    """Import every --cache-from into the store's cache index; the records added. A source
    that fails is a warning and adds nothing."""
    added = 0
    for spec in specs:
        t0 = time.monotonic()
        try:
            if spec.kind == "local":
                count = import_local(store, Path(spec.location), note)
            else:
                count = import_registry(store, spec.location, registry or RegistryOptions(), note)
        except _SOURCE_FAULTS as e:
            own = store_fault(store.root, e)
            if own is not None:
                failure = host_error(own, store=str(store.root.absolute()))
                if failure is None:
                    raise
                raise failure from e
            note(
                f"warning: cache import from {spec.location} failed: {e.message}; "
                "building without it"
            )
            outcome(CacheTransfer("import", spec.location, "failed", reason=e.message))
            continue
        status = "none" if count is None else "imported"
        outcome(CacheTransfer("import", spec.location, status, count or 0))
        note(f"imported {count or 0} cache records from {spec} in {time.monotonic() - t0:.2f}s")
        added += count or 0
    return added
