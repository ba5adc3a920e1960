"""Reading what an image already holds: its file tree (metadata) and single files' bytes.

COPY needs to know what the destination looks like in the parent image (is `/app` a directory?
is `/var/run` a symlink?) and --chown needs the image's /etc/passwd. Both are answered from the
layer blobs in the store, without unpacking a rootfs.
"""

from __future__ import annotations

from collections.abc import Sequence

from layerbuild.image.changes import normalize_path
from layerbuild.image.decompress import open_layer
from layerbuild.image.manifest import Layer
from layerbuild.image.mediatypes import layer_compression
from layerbuild.image.tarreader import TarMembers
from layerbuild.image.tree import FileTree
from layerbuild.store.layerentries import layer_entries
from layerbuild.store.layout import Store

# /etc/passwd and friends; anything bigger is not a passwd file we should parse
_MAX_FILE = 16 << 20


def load_tree(store: Store, layers: Sequence[Layer], *, keep: bool = True) -> FileTree:
    """The metadata tree of the rootfs that `layers` make, in order (each layer's entries
    parsed from its blob once per store: store/layerentries.py)."""
    tree = FileTree()
    for layer in layers:
        tree.apply(layer_entries(store, layer, keep=keep), layer.digest)
    return tree


def read_file(store: Store, layers: Sequence[Layer], tree: FileTree, path: str) -> bytes | None:
    """The bytes of regular file `path` (symlinks followed inside the image), or None."""
    ref = tree.content_ref(normalize_path(path))
    if ref is None or ref[0] is None:
        return None
    digest, member = ref
    layer = next((x for x in layers if x.digest == digest), None)
    if layer is None:
        return None
    with store.content.open(layer.digest) as blob:
        stream = open_layer(blob, layer_compression(layer.media_type))
        for info, opener in TarMembers(stream):
            if normalize_path(info.name) == member and info.isfile():
                with opener() as f:
                    return f.read(_MAX_FILE)
    return None
