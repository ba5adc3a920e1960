"""What the two arguments of `layerbuild diff` name, and a reader of each named image's layers.

The kinds of names are tried in order, in `_KINDS`: a path that exists (an OCI layout
directory, an OCI tarball or a docker-archive, read in place as `analyze` reads them), then a
build of the history (`^N`, the Nth build before the latest of ./Dockerfile, or a build id or
unique prefix of one that names no image of the store: the image it built), then an image of
the store (name:tag, digest or digest prefix). Each kind returns a Target, or None when the
text is not one of its names.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from layerbuild.analyze import source as archive
from layerbuild.errors import LayerbuildError
from layerbuild.export.archivemembers import open_source
from layerbuild.image.decompress import open_layer
from layerbuild.image.descriptor import Platform
from layerbuild.image.imagediff import ImageSide
from layerbuild.image.mediatypes import layer_compression
from layerbuild.store import images as store_images
from layerbuild.store.layout import Store

LayerOpener = Callable[[int], AbstractContextManager[BinaryIO]]


@dataclass(frozen=True)
class Target:
    """An image named on the command line: what the comparison reads of it, and an opener of
    the uncompressed stream of its layer i (valid while the resolving stack is open)."""

    side: ImageSide
    open_layer: LayerOpener


@dataclass(frozen=True)
class Resolving:
    """What a kind needs: the store (opened on first use), the platform, and the stack that
    keeps an archive open until the comparison is done."""

    store: Callable[[], Store]
    platform: Platform | None
    stack: contextlib.ExitStack
    dockerfile: str = "Dockerfile"  # the one `^N` counts builds of


Kind = Callable[[str, Resolving], "Target | None"]


def resolve(text: str, how: Resolving) -> Target:
    """The image `text` names; the last kind (the store) raises when it names none."""
    for kind in _KINDS:
        found = kind(text, how)
        if found is not None:
            return found
    raise AssertionError("the store kind resolves every name or raises")


def _from_path(text: str, how: Resolving) -> Target | None:
    path = Path(text)
    if not path.exists():
        return None
    source = how.stack.enter_context(open_source(path))
    found = archive.locate(source, how.platform)
    side = ImageSide(text, found.config_digest, found.config, tuple(found.layers))
    return Target(side, lambda i: archive.layer_stream(source, found.members[i]))


def _from_build(text: str, how: Resolving) -> Target | None:
    from layerbuild.store.buildhistory import BuildHistory

    store = how.store()
    history = BuildHistory(store.builds_dir)
    record: dict[str, Any] | None
    if text.startswith("^") and text[1:].isdigit():
        record = history.resolve(text, os.path.abspath(how.dockerfile))
    else:
        try:
            record = history.find(text, None) if _HEX.fullmatch(text) else None
        except LayerbuildError:
            return None  # a prefix of several builds: perhaps an image's
        if record is None or _in_store(store, text):
            return None
    image = record.get("image")
    if not image:
        raise LayerbuildError(
            f"build {record['id']} ({record.get('status', 'unknown')}) left no image",
            hint="`layerbuild builds show` says why; diff a build that completed")
    return _from_store(str(image), how, label=f"build {str(record['id'])[:12]}")


def _in_store(store: Store, text: str) -> bool:
    try:
        store_images.resolve(store, text)
    except LayerbuildError:
        return False
    return True


def _from_store(text: str, how: Resolving, label: str | None = None) -> Target:
    store = how.store()
    desc = store_images.resolve(store, text)
    _, manifest, config = store_images.read_image(store, desc, how.platform)
    layers = tuple(archive.manifest_layers(manifest, config, text))
    side = ImageSide(label or text, manifest.config.digest, config, layers)

    @contextlib.contextmanager
    def open_stored(i: int) -> Iterator[BinaryIO]:
        layer = layers[i]
        with store.content.open(layer.digest) as blob:
            yield open_layer(blob, layer_compression(layer.media_type))

    return Target(side, open_stored)


_HEX = re.compile(r"[0-9a-f]{4,}")  # a build id or a prefix of one
_KINDS: tuple[Kind, ...] = (_from_path, _from_build, _from_store)
