"""Remote build cache: export the cache records of a build, import them into another store.

`--cache-to type=local,dest=DIR[,mode=max]` / `--cache-from type=local,src=DIR` and
`--cache-to type=registry,ref=REPO:TAG[,mode=max]` / `--cache-from type=registry,ref=...`.

The exported cache is an OCI image manifest whose layers are the cached layer blobs and whose
config (media type `application/vnd.layerbuild.cache.config.v1+json`) lists the CacheRecords;
docs/cache-format.md describes it. Locally it is an OCI layout directory, in a registry a
tagged manifest, so any OCI tool can copy it around.

Import happens before the build's first step: the records go into the local CacheIndex and
their layer blobs into the store (eagerly; every blob is verified against its digest on the
way in), so lookups hit exactly as if this store had built the steps. Each record keeps its
parent link (the result it was made on, stepcache.py), so records of several builders never
combine into an image none of them built: a record is only taken on top of the very result it
was made on. A record whose key digest does not match its own inputs, that has no parent link
or whose config does not end with its layer, or whose layer the manifest does not carry, is
skipped. A cache that does not exist yet (first CI run), or one of format 1 (records without
parent links), is a note, not an error.

A source that fails — a registry that cannot be reached or refuses, a blob or manifest that does
not verify, a manifest or config that does not parse, a damaged cache directory — is a warning
and a miss, as in BuildKit (moby/buildkit#2836): a cache only makes a build faster, so losing
it must not stop one. A source's records are installed only once all of its blobs are in the
store and verified, so a failed source leaves no record behind. Faults of this store (a full
disk, a read-only file system) are not the source's and stay errors. An export fails the build
unless its spec says `ignore-error=true` (BuildKit's option, moby/buildkit PR #3430); the image
is tagged before the export either way.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerbuild.digest import Digest, canonical_json
from layerbuild.engine.events import CacheTransfer
from layerbuild.engine.faultplace import names_below, store_fault
from layerbuild.errors import (
    DigestMismatch,
    ExitCode,
    ExportError,
    HostError,
    ImageFormatError,
    LayerbuildError,
    RegistryError,
    host_error,
)
from layerbuild.image import mediatypes as mt
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Index, Layer, Manifest
from layerbuild.plan.keys import CacheKey
from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.reference import parse_reference
from layerbuild.store.cacheindex import CacheIndex, CacheRecord, link_problem
from layerbuild.store.layout import Store
from layerbuild.store.refs import write_json_atomic

CACHE_CONFIG = "application/vnd.layerbuild.cache.config.v1+json"
FORMAT_VERSION = 2  # 1: records without parent links, ignored (with a note) on import
MODE_ANNOTATION = "dev.layerbuild.cache.mode"
LOCAL_TAG = "latest"  # the ref.name of the cache manifest in a local cache directory
_MAX_CONFIG = 256 << 20

Note = Callable[[str], None]
Outcome = Callable[[CacheTransfer], None]
# BuildKit reads ignore-error with Go's strconv.ParseBool
_BOOLS = dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True) | dict.fromkeys(
    ("0", "f", "F", "FALSE", "false", "False"), False
)


class CacheError(LayerbuildError):
    """A --cache-to/--cache-from spec is wrong, or an exported cache cannot be read."""

    reference = "cache"
    exit_code = ExitCode.USAGE


@dataclass(frozen=True, slots=True)
class CacheSpec:
    """One --cache-to or --cache-from: `type=local` (a directory) or `type=registry` (a ref)."""

    kind: str  # "local" | "registry"
    location: str  # DIR or REPO:TAG
    mode: str = "min"  # export only: "min" | "max"
    ignore_error: bool = False  # export only: a failed export is a warning

    def __str__(self) -> str:
        return f"type={self.kind} {self.location}"


def parse_cache_spec(text: str, direction: str) -> CacheSpec:
    """Parse `type=local,dest=DIR[,mode=max]` (direction "to") or `type=local,src=DIR`
    (direction "from"); `type=registry,ref=REF[,mode=...]` for either."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise CacheError(f"--cache-{direction} {text!r}: {part!r} is not KEY=VALUE")
        fields[name.strip()] = value.strip()
    kind = fields.pop("type", "registry" if "ref" in fields else "")
    where = {"local": "dest" if direction == "to" else "src", "registry": "ref"}.get(kind)
    if where is None:
        raise CacheError(
            f"--cache-{direction} {text!r}: type must be local or registry",
            hint=f"e.g. --cache-{direction} type=local,"
            f"{'dest' if direction == 'to' else 'src'}=DIR",
        )
    location = fields.pop(where, "")
    mode = fields.pop("mode", "min")
    ignore = _BOOLS.get(fields.pop("ignore-error", "false"))
    if ignore is None:
        raise CacheError(
            f"--cache-{direction} {text!r}: ignore-error must be true or false",
            hint=f"e.g. --cache-{direction} type={kind},{where}=...,ignore-error=true",
        )
    if not location or mode not in ("min", "max") or fields:
        raise CacheError(
            f"--cache-{direction} {text!r}: type={kind} needs {where}=... "
            f"(and optionally mode=min|max); unknown: {', '.join(fields) or 'none'}",
            hint=f"e.g. --cache-{direction} type={kind},{where}="
            f"{'DIR' if kind == 'local' else 'registry.example/app:buildcache'}",
        )
    if kind == "registry":
        parse_reference(location)  # a bad reference fails now, not after the build
    return CacheSpec(kind, location, mode, ignore and direction == "to")


# -- export ------------------------------------------------------------------------------------


def select_records(
    index: CacheIndex,
    steps: Iterable[dict[str, Any]],
    final_stage: str,
    final_layers: Sequence[Layer],
    mode: str,
) -> list[CacheRecord]:
    """The records a build used, in build order: all of them for mode=max; for mode=min the
    final stage's steps and the steps that made one of the final image's layers."""
    wanted = {layer.digest for layer in final_layers}
    out: dict[Digest, CacheRecord] = {}
    for step in steps:
        if not step.get("parent"):
            continue  # a FROM: no record
        record = index.get_digest(Digest(str(step.get("key"))), Digest(str(step["parent"])))
        if record is None or record.key.digest in out:
            continue
        in_final = str(step.get("stage")) == final_stage or (
            record.layer is not None and record.layer.digest in wanted
        )
        if mode == "max" or in_final:
            out[record.key.digest] = record
    return list(out.values())


def cache_image(store: Store, records: Sequence[CacheRecord], mode: str) -> Descriptor:
    """Write the cache config and manifest of `records` into the store; the manifest's
    descriptor."""
    config = {
        "mediaType": CACHE_CONFIG,
        "version": FORMAT_VERSION,
        "records": [r.to_json() for r in records],
    }
    data = canonical_json(config)
    config_desc = Descriptor(CACHE_CONFIG, store.content.put_bytes(data), len(data))
    layers = {r.layer.digest: r.layer.descriptor for r in records if r.layer is not None}
    manifest = Manifest(
        config_desc, tuple(layers.values()), annotations=((MODE_ANNOTATION, mode),)
    )
    body = manifest.to_bytes()
    return Descriptor(mt.OCI_MANIFEST, store.content.put_bytes(body), len(body))


def export_local(store: Store, desc: Descriptor, dest: Path) -> None:
    """Write the cache image `desc` as the OCI layout `dest` (index.json names it `latest`)."""
    blobs_dir = dest / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest.from_bytes(store.content.read_bytes(desc.digest))
    wanted = [desc.digest, manifest.config.digest, *(layer.digest for layer in manifest.layers)]
    for digest in wanted:
        target = blobs_dir / digest.hex
        if not target.is_file():
            _copy_atomic(store.content.path(digest), target)
    write_json_atomic(dest / "oci-layout", {"imageLayoutVersion": mt.OCI_LAYOUT_VERSION})
    entry = desc.with_annotations({mt.ANNOTATION_REF_NAME: LOCAL_TAG})
    write_json_atomic(dest / "index.json", Index((entry,)).to_json())
    # blobs of earlier exports that this one no longer names would only grow the directory
    keep = {d.hex for d in wanted}
    for path in blobs_dir.iterdir():
        if path.name not in keep and not path.name.startswith(".tmp-"):
            path.unlink(missing_ok=True)


def _copy_atomic(src: Path, target: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_caches(
    store: Store,
    specs: Sequence[CacheSpec],
    steps: Iterable[dict[str, Any]],
    final_stage: str,
    final_layers: Sequence[Layer],
    registry: RegistryOptions | None,
    note: Note = lambda message: None,
    outcome: Outcome = lambda transfer: None,
) -> None:
    """Export the records of this build to every --cache-to. A failed export raises, unless
    its spec says ignore-error=true: then it is a warning and the next one is tried."""
    if not specs:
        return
    index = CacheIndex(store.root)
    steps = list(steps)
    for spec in specs:
        records = select_records(index, steps, final_stage, final_layers, spec.mode)
        desc = cache_image(store, records, spec.mode)
        try:
            _send(store, spec, desc, registry)
        except (RegistryError, CacheError, OSError) as e:
            reason = _export_fault(store, spec, e)
            if reason is None:
                raise
            outcome(CacheTransfer("export", spec.location, "failed", reason=reason))
            if not spec.ignore_error:
                raise _export_failed(spec, e, reason) from e
            note(
                f"warning: cache export to {spec.location} failed: {reason}; "
                "ignored (ignore-error=true)"
            )
            continue
        outcome(CacheTransfer("export", spec.location, "exported", len(records)))
        note(f"exported {len(records)} cache records to {spec} (mode={spec.mode})")


def _send(
    store: Store, spec: CacheSpec, desc: Descriptor, registry: RegistryOptions | None
) -> None:
    if spec.kind == "local":
        export_local(store, desc, Path(spec.location))
    else:
        from layerbuild.registry.push import push  # http.client and ssl: only when used

        push(store, desc, spec.location, options=registry or RegistryOptions())


def _export_fault(store: Store, spec: CacheSpec, err: BaseException) -> str | None:
    """Why the destination of `spec` failed; None when the fault is this store's (or not the
    destination's at all), which no ignore-error hides."""
    if store_fault(store.root, err) is not None:
        return None
    if isinstance(err, LayerbuildError):
        return err.message
    assert isinstance(err, OSError)
    dest = Path(spec.location).absolute()
    if spec.kind == "local" and names_below(err, dest):
        return str(err)
    return None


def _export_failed(spec: CacheSpec, err: BaseException, reason: str) -> LayerbuildError:
    """The error a failed export (without ignore-error) ends the build with: of the kind (so
    the exit status) of its cause, saying that the image itself is fine."""
    hint = (
        "the image was built and tagged, only the cache was not exported; add "
        "ignore-error=true to the --cache-to to make this a warning"
    )
    message = f"cache export to {spec.location} failed: {reason}"
    if isinstance(err, RegistryError):
        return RegistryError(message, status=err.status, hint=_hints(err.hint, hint))
    if isinstance(err, CacheError):
        return CacheError(message, hint=_hints(err.hint, hint))
    host = host_error(err) if isinstance(err, OSError) else None
    if host is not None:  # the destination's disk, not the store's (_export_fault)
        return HostError(
            message, path=host.path, errno_code=host.errno, hint=_hints(host.hint, hint)
        )
    return ExportError(message, hint=hint)


def _hints(first: str | None, second: str) -> str:
    return f"{first}; {second}" if first else second


# -- import ------------------------------------------------------------------------------------


def read_records(
    manifest: Manifest, config: bytes, where: str, note: Note = lambda message: None
) -> list[CacheRecord]:
    """The usable records of a cache config: the key digest must be the digest of the key's
    inputs, the record must link to its parent and end with its own layer, and the layer must
    be one the manifest carries (so its blob came with it)."""
    _check_config_type(manifest, where)
    try:
        obj = json.loads(config)
        raw = obj["records"] if isinstance(obj, dict) else None
        if isinstance(raw, list) and obj.get("version") == 1:
            note(f"the cache at {where} is of an older format (no parent links); not used")
            return []
        if not isinstance(raw, list) or obj.get("version") != FORMAT_VERSION:
            raise ValueError("no records, or an unknown format version")
    except (ValueError, KeyError) as e:
        raise CacheError(f"the cache config of {where} is damaged: {e}") from None
    carried = {d.digest: d for d in manifest.layers}
    out = []
    for item in raw:
        try:
            record = CacheRecord.from_json(item)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        if CacheKey.of(record.key.inputs).digest != record.key.digest:
            continue
        if link_problem(record, None):
            continue
        if record.layer is not None and record.layer.digest not in carried:
            continue
        out.append(record)
    return out


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
    if store.content.size(digest) > _MAX_CONFIG:
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


def cache_manifest(data: bytes, media_type: str, where: str) -> Manifest:
    """The cache manifest in `data`, or a CacheError saying why it is none: not an image
    manifest, not JSON, a field of the wrong type, or a config that is not a cache's."""
    if media_type not in mt.MANIFESTS:
        raise CacheError(f"{where} is a {media_type or 'untyped'} document, not a cache manifest")
    try:
        manifest = Manifest.from_bytes(data, media_type)
    except (ImageFormatError, TypeError, AttributeError) as e:
        raise CacheError(f"the cache manifest of {where} is damaged: {e}") from None
    _check_config_type(manifest, where)  # before its config is fetched: it may be large
    return manifest


def _check_config_type(manifest: Manifest, where: str) -> None:
    if manifest.config.media_type != CACHE_CONFIG:
        raise CacheError(
            f"{where} is not a layerbuild cache (config media type {manifest.config.media_type})",
            hint="point --cache-from at what --cache-to wrote",
        )


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
