"""A layer's entries with the digest of every regular file's content, read in one pass.

`layerbuild diff` compares files by content without keeping any: each member's data is hashed
as the tar stream goes past it (the tar reader's opener is valid only while its member is the
current one), so memory holds one entry per member and a chunk, whatever the layer's size.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO

from layerbuild.digest import Digest
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.tarreader import read_changes

_CHUNK = 1 << 20
EMPTY = Digest.from_hash(hashlib.sha256())


@dataclass(frozen=True)
class LayerFiles:
    """A layer's Changes in archive order (without openers) and, by path, the digest of each
    FILE's content (an empty file has EMPTY's)."""

    entries: tuple[Change, ...]
    digests: Mapping[str, Digest]


def read_layer_files(stream: BinaryIO) -> LayerFiles:
    """The entries of the uncompressed layer tar `stream`, each file's content hashed."""
    entries: list[Change] = []
    digests: dict[str, Digest] = {}
    for change in read_changes(stream):
        if change.kind is ChangeKind.FILE:
            digests[change.path] = _hash(change)
            if change.content is not None:
                change = dataclasses.replace(change, content=None)
        entries.append(change)
    return LayerFiles(tuple(entries), digests)


def _hash(change: Change) -> Digest:
    h = hashlib.sha256()
    if change.content is not None:
        with change.content() as reader:
            while chunk := reader.read(_CHUNK):
                h.update(chunk)
    return Digest.from_hash(h)
