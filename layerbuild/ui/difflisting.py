"""The text view of `layerbuild diff`: a summary, the config fields, the layer pairs with the
step that made each differing one and why it differs, its files, and the final filesystems'
files (docs/diff.md shows it)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from layerbuild.image.filediff import FileChange, FileState
from layerbuild.image.imagediff import ImageDiff, PairDiff, differing_layers
from layerbuild.image.layerpairs import LayerSide
from layerbuild.ui.listing import human_size

_INDENT = "      "


def render(diff: ImageDiff, *, limit: int) -> str:
    """The comparison; at most `limit` files listed per section."""
    parts = [_summary(diff)]
    if diff.identical:
        return parts[0]
    if diff.config:
        fields = (_config_line(c.field, c.a, c.b) for c in diff.config)
        parts.append("\n".join(["config:", *fields]))
    parts.append("\n".join(["layers:", *_layers(diff.layers, limit)]))
    if diff.files:
        lines = ["files (the final root filesystems, whiteouts applied):"]
        parts.append("\n".join([*lines, *_files(diff.files, limit, "  ")]))
    return "\n\n".join(parts)


def _summary(diff: ImageDiff) -> str:
    a, b = diff.a, diff.b
    head = [
        f"a: {a.name}  config {a.config_digest.short}  {len(a.layers)} layers",
        f"b: {b.name}  config {b.config_digest.short}  {len(b.layers)} layers",
    ]
    if diff.identical:
        return "\n".join([*head, "identical"])
    counts = (
        f"{len(diff.config)} config field(s), {differing_layers(diff.layers)} layer(s), "
        f"{sum(1 for c in diff.files if c.status != 'mtime-only')} file(s) "
        f"(+{sum(1 for c in diff.files if c.status == 'mtime-only')} mtime-only) differ"
    )
    return "\n".join([*head, counts])


def _config_line(field: str, a: Any, b: Any) -> str:
    return f"  {field}: {_value(a)} -> {_value(b)}"


def _value(value: Any) -> str:
    if value is None:
        return "(unset)"
    return value if isinstance(value, str) else json.dumps(value)


def _layers(pairs: Sequence[PairDiff], limit: int) -> Iterator[str]:
    for item in pairs:
        pair = item.pair
        side = pair.a or pair.b
        assert side is not None
        mark = "=" if not pair.differs else "≠"
        yield f"  {_position(pair.a)}/{_position(pair.b)} {mark} {side.origin.label()}"
        if pair.a is not None and pair.b is not None and pair.a.key != pair.b.key:
            yield f"{_INDENT}b: {pair.b.origin.label()}"
        if pair.differs or pair.reason:
            yield f"{_INDENT}{pair.verdict}: {pair.reason}"
        yield from _files(item.files, limit, _INDENT)


def _position(side: LayerSide | None) -> str:
    return "-" if side is None else str(side.index + 1)


def _files(changes: Sequence[FileChange], limit: int, indent: str) -> Iterator[str]:
    for change in changes[:limit]:
        yield f"{indent}{change.status:<10} {change.path}  {_detail(change)}"
    if len(changes) > limit:
        yield f"{indent}... and {len(changes) - limit} more (--limit, or --format json)"


def _detail(change: FileChange) -> str:
    if change.a is None or change.b is None:
        state = change.a or change.b
        assert state is not None
        return _describe(state)
    return ", ".join(_aspect(name, change.a, change.b) for name in change.what)


def _describe(s: FileState) -> str:
    text = s.kind if s.kind != "file" else human_size(s.size)
    return f"{text} -> {s.link}" if s.link else text


def _aspect(name: str, a: FileState, b: FileState) -> str:
    values = {
        "type": (a.kind, b.kind),
        "content": (human_size(a.size), human_size(b.size)),
        "mode": (f"{a.mode:04o}", f"{b.mode:04o}"),
        "owner": (f"{a.uid}:{a.gid}", f"{b.uid}:{b.gid}"),
        "link": (a.link, b.link),
        "device": (f"{a.device[0]},{a.device[1]}", f"{b.device[0]},{b.device[1]}"),
        "xattrs": (_xattr_names(a), _xattr_names(b)),
        "mtime": (str(a.mtime), str(b.mtime)),
    }
    old, new = values[name]
    return f"{name} {old} -> {new}"


def _xattr_names(s: FileState) -> str:
    shown = (f"{k}={v[:16].decode('utf-8', 'backslashreplace')}" for k, v in s.xattrs)
    return ",".join(shown) or "(none)"
