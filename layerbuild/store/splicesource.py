"""The previous layer a pack splices from (image/tarsplice.py): its stored blob, opened through
the store's verifying reader, with the entry index kept for it (tarindex.py); and the build's
counters of what was spliced, for benchmarks ($LAYERBUILD_SPLICE_STATS)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from layerbuild.digest import Digest
from layerbuild.errors import LayerbuildError
from layerbuild.image.manifest import Layer
from layerbuild.image.mediatypes import layer_compression
from layerbuild.store.layout import Store

if TYPE_CHECKING:  # imported when a layer is packed: a build that hits never needs them
    from layerbuild.image.tarsplice import Splice


class SpliceSource:
    """An open previous layer and the Splice that reads it; `check` before the new layer is
    committed, `close` in any case."""

    def __init__(self, blob: BinaryIO, stream: BinaryIO, splice: Splice) -> None:
        self._blob = blob
        self._stream = stream
        self.splice = splice

    def check(self) -> None:
        """The old blob hashed to its digest (the store's reader checks it as it closes):
        raises SpliceSourceError otherwise, and the layer is packed from its files."""
        from layerbuild.image.tarsplice import SpliceSourceError

        try:
            self._blob.close()
        except (LayerbuildError, OSError) as e:
            raise SpliceSourceError(f"the previous layer is damaged: {e}") from e

    def close(self) -> None:
        # after a failed pack the blob may be unverified: its error was the pack's to report
        with contextlib.suppress(Exception):
            self._stream.close()
        with contextlib.suppress(Exception):
            self._blob.close()


def splice_source(
    store: Store, previous: Layer | None, known: Mapping[str, Digest]
) -> SpliceSource | None:
    """`previous` opened for splicing, or None: no previous layer, no index for it, or its
    blob is gone (then every entry is read from its file)."""
    from layerbuild.image.decompress import open_layer  # codecs: on a miss only
    from layerbuild.image.tarsplice import Splice
    from layerbuild.store import tarindex

    if previous is None or not known:
        return None
    index = tarindex.load(store, previous.digest)
    if index is None:
        return None
    try:
        blob = store.content.open(previous.digest)
    except (LayerbuildError, OSError):
        return None  # gc took it meanwhile
    try:
        stream = open_layer(blob, layer_compression(previous.media_type))
    except (LayerbuildError, OSError, ValueError):
        blob.close()
        return None
    return SpliceSource(blob, stream, Splice(index, stream, known))


@dataclass
class SpliceCounters:
    """What a build's packs spliced: layers, file entries copied from a previous layer, file
    entries read from their files, and the bytes of those."""

    layers: int = 0
    spliced: int = 0
    written: int = 0
    read_bytes: int = 0

    def add(self, splice: Splice) -> None:
        self.layers += 1
        self.spliced += splice.spliced
        self.written += splice.written
        self.read_bytes += splice.read_bytes

    def write(self, target: Path) -> None:
        """Append the counters to `target` as one JSON line (a benchmark's file)."""
        counters = {
            "layers": self.layers,
            "spliced": self.spliced,
            "written": self.written,
            "read_bytes": self.read_bytes,
        }
        with contextlib.suppress(OSError), open(target, "a", encoding="ascii") as f:
            f.write(json.dumps(counters) + "\n")
