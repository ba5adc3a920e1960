"""One image's analysis: its layers with their history step, sizes and waste, the biggest
wasted paths with the fix, dive's numbers, and the directories with their wasted share; as a
value for the terminal view (ui/analysis.py) and as the JSON of `--format json`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from layerbuild.analyze.source import ImageInput
from layerbuild.analyze.thresholds import RuleResult
from layerbuild.image.efficiency import Efficiency, efficiency
from layerbuild.image.layerhistory import LayerOrigin, fix_hint, pair_history
from layerbuild.image.waste import LayerStats, analyze_waste
from layerbuild.image.wastepaths import DirShare, WastedPath, dir_shares, wasted_paths


@dataclass(frozen=True)
class LayerRow:
    stats: LayerStats
    digest: str
    compressed_bytes: int
    origin: LayerOrigin


@dataclass(frozen=True)
class WasteRow:
    path: WastedPath
    added: LayerOrigin
    removed: LayerOrigin
    hint: str


@dataclass(frozen=True)
class Analysis:
    image: str
    layers: tuple[LayerRow, ...]
    wasted: tuple[WasteRow, ...]
    wasted_bytes: int
    dive: Efficiency
    tree: DirShare
    rules: tuple[RuleResult, ...] = ()

    @property
    def content_bytes(self) -> int:
        return sum(row.stats.content_bytes for row in self.layers)

    @property
    def compressed_bytes(self) -> int:
        return sum(row.compressed_bytes for row in self.layers)


def analyze(image: ImageInput) -> Analysis:
    waste = analyze_waste(image.entries)
    origins = pair_history(image.config.history, len(image.layers))
    layers = tuple(
        LayerRow(stats, str(layer.digest), layer.size, origin)
        for stats, layer, origin in zip(waste.layers, image.layers, origins, strict=True)
    )
    rows = tuple(
        WasteRow(p, origins[p.added], origins[p.removed], _hint(p, origins))
        for p in wasted_paths(waste.hidden)
    )
    return Analysis(
        image=image.name,
        layers=layers,
        wasted=rows,
        wasted_bytes=waste.wasted_bytes,
        dive=efficiency(image.entries),
        tree=dir_shares(image.entries, waste.hidden),
    )


def _hint(p: WastedPath, origins: list[LayerOrigin]) -> str:
    return fix_hint(origins[p.added], origins[p.removed], p.how)


def to_json(analysis: Analysis) -> dict[str, Any]:
    dive = analysis.dive
    percent = dive.user_wasted_percent
    return {
        "image": analysis.image,
        "compressed_bytes": analysis.compressed_bytes,
        "content_bytes": analysis.content_bytes,
        "wasted_bytes": analysis.wasted_bytes,
        "dive": {
            "efficiency": dive.score,
            "wasted_bytes": dive.wasted_bytes,
            "size_bytes": dive.size_bytes,
            "user_size_bytes": dive.user_size_bytes,
            "user_wasted_percent": None if math.isinf(percent) else percent,
        },
        "layers": [_layer_json(i, row) for i, row in enumerate(analysis.layers)],
        "wasted_paths": [_waste_json(row) for row in analysis.wasted],
        "tree": _tree_json(analysis.tree),
        "ci": [
            {"rule": r.rule, "limit": r.limit, "passed": r.passed, "message": r.message}
            for r in analysis.rules
        ],
    }


def _layer_json(index: int, row: LayerRow) -> dict[str, Any]:
    s = row.stats
    return {
        "index": index,
        "digest": row.digest,
        "compressed_bytes": row.compressed_bytes,
        "content_bytes": s.content_bytes,
        "history_step": row.origin.step or None,
        "created_by": row.origin.created_by,
        "added": s.added,
        "changed": s.changed,
        "deleted": s.deleted,
        "wasted_bytes": s.wasted_bytes,
        "hides_bytes": s.hides_bytes,
    }


def _waste_json(row: WasteRow) -> dict[str, Any]:
    p = row.path
    return {
        "path": "/" + p.path,
        "bytes": p.size,
        "files": p.files,
        "how": p.how.value,
        "added_by_layer": p.added,
        "removed_by_layer": p.removed,
        "added_by_step": row.added.step or None,
        "removed_by_step": row.removed.step or None,
        "hint": row.hint,
    }


def _tree_json(node: DirShare) -> dict[str, Any]:
    return {
        "path": "/" + node.path,
        "bytes": node.shipped,
        "wasted_bytes": node.wasted,
        "children": [_tree_json(c) for c in node.children],
    }
