"""Read both images' layers and compare them (image/imagediff.py does the comparing).

Every layer is read once, streaming, its files hashed as they pass (image/layerfiles.py): a
layer both images hold (the same diff_id: a shared base) is read once for both. Memory holds
the entries' metadata, never their content.
"""

from __future__ import annotations

from layerbuild.diff.targets import Target
from layerbuild.digest import Digest
from layerbuild.image.imagediff import ImageDiff, diff_images, needs_files
from layerbuild.image.layerfiles import LayerFiles, read_layer_files


def compare(a: Target, b: Target) -> ImageDiff:
    files: dict[Digest, LayerFiles] = {}
    if not needs_files(a.side, b.side):
        return diff_images(a.side, b.side, files)
    for target in (a, b):
        for i, layer in enumerate(target.side.layers):
            if layer.diff_id not in files:
                with target.open_layer(i) as stream:
                    files[layer.diff_id] = read_layer_files(stream)
    return diff_images(a.side, b.side, files)
