"""--cache-to: the records a build used, as a cache image in a local OCI layout or a registry.

An export fails the build unless its spec says `ignore-error=true` (BuildKit's option,
moby/buildkit PR #3430); the image is tagged before the export either way. A fault of this
store is never hidden by ignore-error (faultplace.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from layerbuild.digest import Digest
from layerbuild.errors import CacheError, ExportError, HostError, LayerbuildError, RegistryError
from layerbuild.hosterrors import host_error
from layerbuild.image import mediatypes as mt
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Index, Layer, Manifest
from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.remotecache.faultplace import names_below, store_fault
from layerbuild.registry.remotecache.records import cache_image
from layerbuild.registry.remotecache.spec import (
    CacheSpec,
    CacheTransfer,
    Note,
    Outcome,
)
from layerbuild.store.cacheindex import CacheIndex, CacheRecord
from layerbuild.store.layout import Store
from layerbuild.store.refs import write_json_atomic

LOCAL_TAG = "latest"  # the ref.name of the cache manifest in a local cache directory


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
