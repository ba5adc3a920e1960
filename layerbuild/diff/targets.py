"""What the two arguments of `layerbuild diff` name, and a reader of each named image's layers.

The kinds of names are tried in order, in `_KINDS`: a path that exists (an OCI layout
directory, an OCI tarball or a docker-archive, read in place as `analyze` reads them), then an
image of the store (name:tag, digest or digest prefix). A new kind (a build's id, once builds
are recorded) is one more function in that list, placed before the store's: it returns a
Target or None when the text is not one of its names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from layerbuild.analyze import source as archive
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


def _from_store(text: str, how: Resolving) -> Target:
    store = how.store()
    desc = store_images.resolve(store, text)
    _, manifest, config = store_images.read_image(store, desc, how.platform)
    layers = tuple(archive.manifest_layers(manifest, config, text))
    side = ImageSide(text, manifest.config.digest, config, layers)

    @contextlib.contextmanager
    def open_stored(i: int) -> Iterator[BinaryIO]:
        layer = layers[i]
        with store.content.open(layer.digest) as blob:
            yield open_layer(blob, layer_compression(layer.media_type))

    return Target(side, open_stored)


_KINDS: tuple[Kind, ...] = (_from_path, _from_store)
