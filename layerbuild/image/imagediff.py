"""Why two images differ: config fields, layers paired with a verdict each, and files.

The pure assembly of `layerbuild diff`: it takes both images' configs and layers and the files
of every layer (image/layerfiles.py, read by the caller), and returns the whole comparison.
Three views of the files, since they answer different questions:
- per differing layer pair, the entries the two layers hold (what each step wrote);
- the final root filesystems, whiteouts applied (what a container sees), which a `diffoci` or
  an unpack-and-compare also finds;
and the config fields. The images are identical when their configs are (the config names every
layer's diff_id) and their layer blobs are the same (compression).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from layerbuild.digest import Digest
from layerbuild.image.config import ImageConfig
from layerbuild.image.configdiff import ConfigChange, compare_configs
from layerbuild.image.filediff import (
    MTIME_ONLY,
    FileChange,
    FileState,
    compare,
    layer_states,
    rootfs_states,
)
from layerbuild.image.layerfiles import LayerFiles
from layerbuild.image.layerpairs import (
    FilesDiffer,
    LayerPair,
    LayerSide,
    judge,
    layer_sides,
    pair_layers,
)
from layerbuild.image.manifest import Layer


@dataclass(frozen=True)
class ImageSide:
    """One image as `diff` sees it: what the user named, its config and its layers."""

    name: str
    config_digest: Digest
    config: ImageConfig
    layers: tuple[Layer, ...]


@dataclass(frozen=True)
class PairDiff:
    pair: LayerPair
    files: tuple[FileChange, ...]


@dataclass(frozen=True)
class ImageDiff:
    a: ImageSide
    b: ImageSide
    config: tuple[ConfigChange, ...]
    layers: tuple[PairDiff, ...]
    files: tuple[FileChange, ...]

    @property
    def identical(self) -> bool:
        return self.a.config_digest == self.b.config_digest and [
            layer.digest for layer in self.a.layers
        ] == [layer.digest for layer in self.b.layers]


def diff_images(a: ImageSide, b: ImageSide, files: Mapping[Digest, LayerFiles]) -> ImageDiff:
    """The comparison; `files` holds every layer of both images by diff_id (none is needed
    when both have the same layers: see `needs_files`)."""
    matched = pair_layers(layer_sides(a.config, a.layers), layer_sides(b.config, b.layers))
    changes = [_pair_files(x, y, files) for x, y in matched]
    found = [FilesDiffer(bool(c), any(f.status != MTIME_ONLY for f in c)) for c in changes]
    pairs = judge(matched, found)
    per_layer = tuple(PairDiff(p, c) for p, c in zip(pairs, changes, strict=True))
    rootfs: list[FileChange] = []
    if needs_files(a, b):
        tree_a = rootfs_states([(layer.diff_id, files[layer.diff_id]) for layer in a.layers])
        tree_b = rootfs_states([(layer.diff_id, files[layer.diff_id]) for layer in b.layers])
        rootfs = compare(tree_a, tree_b)
    configs = tuple(compare_configs(a.config, b.config))
    return ImageDiff(a, b, configs, per_layer, tuple(rootfs))


def needs_files(a: ImageSide, b: ImageSide) -> bool:
    """Whether the files differ at all: not when both images have the same layers."""
    return [layer.diff_id for layer in a.layers] != [layer.diff_id for layer in b.layers]


def _pair_files(
    a: LayerSide | None, b: LayerSide | None, files: Mapping[Digest, LayerFiles]
) -> tuple[FileChange, ...]:
    if a is not None and b is not None and a.diff_id == b.diff_id:
        return ()
    return tuple(compare(_states(a, files), _states(b, files)))


def _states(side: LayerSide | None, files: Mapping[Digest, LayerFiles]) -> dict[str, FileState]:
    return {} if side is None else layer_states(files[side.diff_id])


def to_json(diff: ImageDiff) -> dict[str, Any]:
    """The comparison as `diff --format json` prints it (docs/diff.md)."""
    return {
        "identical": diff.identical,
        "a": _image_json(diff.a),
        "b": _image_json(diff.b),
        "config": [{"field": c.field, "a": c.a, "b": c.b} for c in diff.config],
        "layers": [_pair_json(p) for p in diff.layers],
        "files": [file_json(c) for c in diff.files],
    }


def _image_json(side: ImageSide) -> dict[str, Any]:
    digest = str(side.config_digest)
    return {"name": side.name, "config_digest": digest, "layers": len(side.layers)}


def _pair_json(item: PairDiff) -> dict[str, Any]:
    pair = item.pair
    return {
        "a": _side_json(pair.a),
        "b": _side_json(pair.b),
        "verdict": pair.verdict,
        "reason": pair.reason,
        "files": [file_json(c) for c in item.files],
    }


def _side_json(side: LayerSide | None) -> dict[str, Any] | None:
    if side is None:
        return None
    return {
        "layer": side.index + 1,
        "diff_id": str(side.diff_id),
        "digest": str(side.layer.digest),
        "step": side.origin.step or None,
        "created_by": side.origin.created_by or None,
    }


def file_json(change: FileChange) -> dict[str, Any]:
    return {
        "path": change.path,
        "status": change.status,
        "what": list(change.what),
        "size": change.size,
        "a": _state_json(change.a),
        "b": _state_json(change.b),
    }


def _state_json(s: FileState | None) -> dict[str, Any] | None:
    if s is None:
        return None
    out: dict[str, Any] = {
        "type": s.kind,
        "mode": f"{s.mode:04o}",
        "uid": s.uid,
        "gid": s.gid,
        "size": s.size,
        "mtime": s.mtime,
    }
    if s.digest is not None:
        out["digest"] = str(s.digest)
    if s.link:
        out["link"] = s.link
    if s.device != (0, 0):
        out["device"] = list(s.device)
    if s.xattrs:
        out["xattrs"] = {k: v.decode("utf-8", "backslashreplace") for k, v in s.xattrs}
    return out


def differing_layers(items: Sequence[PairDiff]) -> int:
    """How many layer pairs differ."""
    return sum(1 for item in items if item.pair.differs)
