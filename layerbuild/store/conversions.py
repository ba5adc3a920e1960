"""Layers converted to another compression for an export, remembered so that the next export
of the same image reuses the blob instead of compressing it again.

A conversion is content addressed twice over: the converted blob is an ordinary blob of the
content store, and ``cache/conversions/<source hex>.<compression>.<level>`` names it (its
digest and size, one small JSON file written atomically). A record whose blob gc has removed,
or that cannot be read, is only a miss: the layer is converted again and the record replaced.
Converted blobs are not roots of gc: nothing but an export needs them, and it makes them again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from layerbuild.digest import Digest
from layerbuild.errors import ImageFormatError
from layerbuild.image.decompress import open_layer
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.mediatypes import layer_compression, layer_media_type
from layerbuild.store.refs import write_json_atomic

if TYPE_CHECKING:
    from pathlib import Path

    from layerbuild.store.layout import Store


@dataclass(frozen=True, slots=True)
class Conversion:
    """One layer blob to write in another compression."""

    layer: Descriptor  # as the image has it, in the store
    diff_id: Digest  # what the config says its uncompressed tar hashes to
    compression: str  # "gzip" | "zstd" | "none"
    level: int | None  # the encoder's; None: its default


def convert_layer(store: Store, job: Conversion, *, oci: bool = True) -> Descriptor:
    """The layer `job.layer` in `job.compression`, stored; from the record of an earlier
    conversion when its blob is still there. ImageFormatError when the blob's tar does not
    hash to `job.diff_id` (a layer that disagrees with its config is never exported)."""
    media_type = layer_media_type(job.compression, oci=oci)
    record = _record_path(store, job)
    known = _read(record)
    if (
        known is not None
        and store.content.has(known[0])
        and store.content.size(known[0]) == known[1]
    ):
        return Descriptor(media_type, known[0], known[1])
    from layerbuild.image.recompress import recompress  # the codecs: only to convert

    with store.content.open(job.layer.digest) as blob, store.content.ingest() as sink:
        tar = open_layer(blob, layer_compression(job.layer.media_type))
        made = recompress(tar, sink, compression=job.compression, level=job.level, oci=oci)
        if made.diff_id != job.diff_id:
            raise ImageFormatError(
                f"layer {job.layer.digest} uncompresses to {made.diff_id}, but the image "
                f"config names {job.diff_id}",
                hint="run `layerbuild fsck`; rebuild the image",
            )
        sink.commit(expected=made.digest)
    record.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(record, {"digest": str(made.digest), "size": made.size})
    return Descriptor(media_type, made.digest, made.size)


def _record_path(store: Store, job: Conversion) -> Path:
    level = "default" if job.level is None else str(job.level)
    return store.conversions_dir / f"{job.layer.digest.hex}.{job.compression}.{level}"


def _read(path: Path) -> tuple[Digest, int] | None:
    try:
        obj = json.loads(path.read_bytes())
        return Digest(str(obj["digest"])), int(obj["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
