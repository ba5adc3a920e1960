"""What `layerbuild df` prints: a table like `docker system df -v`, or JSON."""

from __future__ import annotations

import json
from typing import Any

from layerbuild.store.diskusage import DiskUsage
from layerbuild.store.sharing import CATEGORIES, Sizes
from layerbuild.ui.listing import human_size


def to_json(usage: DiskUsage) -> str:
    """Every figure in bytes; the parts in the order the table prints them."""

    def sizes(s: Sizes) -> dict[str, int]:
        return {"compressed": s.compressed, "uncompressed": s.uncompressed}

    obj: dict[str, Any] = {
        "images": [
            {
                "digest": str(i.digest),
                "names": list(i.names),
                "layers": i.layers,
                "total": sizes(i.total),
                "shared": sizes(i.shared),
                "unique": sizes(i.unique),
            }
            for i in usage.images
        ],
        "images_total": sizes(usage.images_total),
        "shared_layers": [
            {"digest": str(s.digest), **sizes(s.sizes), "images": len(s.images)}
            for s in usage.shared_layers
        ],
        "store": {key: usage.parts[key] for key, _ in CATEGORIES},
        "total": usage.total,
        "reclaimable": {
            "prune": usage.prune_frees,
            "cache_prune_all": usage.cache_prune_all_frees,
        },
    }
    return json.dumps(obj, indent=2)


def table(usage: DiskUsage) -> str:
    lines = ["Images (size as stored / unpacked):"]
    head = ("NAME", "DIGEST", "LAYERS", "SIZE", "SHARED", "UNIQUE")
    lines.append(f"{head[0]:<32} {head[1]:<14} {head[2]:>6}  {head[3]:<19} {head[4]:<19} UNIQUE")
    for i in usage.images:
        name = ", ".join(i.names) or "<none>"
        lines.append(
            f"{name:<32} {i.digest.hex[:12]:<14} {i.layers:>6}  {_pair(i.total):<19} "
            f"{_pair(i.shared):<19} {_pair(i.unique)}"
        )
    lines.append(f"{'(together, each blob once)':<54}{_pair(usage.images_total)}")
    lines += ["", "Layers shared between images:"]
    lines.append(f"{'LAYER':<14} {'SIZE':<19} IMAGES")
    for s in usage.shared_layers:
        lines.append(f"{s.digest.hex[:12]:<14} {_pair(s.sizes):<19} {len(s.images)}")
    if not usage.shared_layers:
        lines.append("(none)")
    lines += ["", "Store (apparent bytes of its files; directories not counted):"]
    for key, label in CATEGORIES:
        lines.append(f"{label:<36} {human_size(usage.parts[key]):>9} {usage.parts[key]:>14}")
    lines.append(f"{'total':<36} {human_size(usage.total):>9} {usage.total:>14}")
    lines += [
        "",
        "Reclaimable:",
        f"{'layerbuild prune':<36} {human_size(usage.prune_frees):>9} {usage.prune_frees:>14}",
        f"{'layerbuild cache prune --all':<36} {human_size(usage.cache_prune_all_frees):>9} "
        f"{usage.cache_prune_all_frees:>14}",
    ]
    return "\n".join(lines)


def _pair(s: Sizes) -> str:
    return f"{human_size(s.compressed)} / {human_size(s.uncompressed)}"
