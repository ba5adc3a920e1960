"""`diff A B --html FILE`: the comparison as one HTML page (docs/diff.md).

Pure: it takes what `diff --format json` prints (image/imagediff.py `to_json`) and returns the
page: the config fields that differ, the layer pairs with the step that made each, its verdict
and why, and the files, biggest first (per differing layer pair and for the final root
filesystems). Long file lists are cut at FILES_SHOWN; the JSON has them all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from layerbuild.ui.htmlpage import document, esc, facts, size

FILES_SHOWN = 500  # per table: a page stays one a browser opens at once
OPEN_UP_TO = 20  # a layer pair's files are shown opened when there are no more than these


def render_diff_page(diff_json: Mapping[str, Any]) -> str:
    a, b = diff_json.get("a") or {}, diff_json.get("b") or {}
    title = f"{a.get('name', 'a')} vs {b.get('name', 'b')}"
    layers: list[Mapping[str, Any]] = list(diff_json.get("layers") or ())
    files: list[Mapping[str, Any]] = list(diff_json.get("files") or ())
    body = [
        f"<h1>Comparison: {esc(title)}</h1>",
        _header(diff_json, a, b, layers, files),
        _config(diff_json.get("config") or ()),
        _layers(layers),
    ]
    if files:
        body.append("<h2>Files of the final root filesystems (whiteouts applied)</h2>")
        body.append(_files_table(files))
    return document(f"layerbuild diff: {title}", "\n".join(p for p in body if p))


def _header(
    diff: Mapping[str, Any],
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    layers: Sequence[Mapping[str, Any]],
    files: Sequence[Mapping[str, Any]],
) -> str:
    verdict = "identical" if diff.get("identical") else "differs"
    real = sum(1 for f in files if f.get("status") != "mtime-only")
    pairs = [
        ("verdict", f'<span class="badge {"same" if verdict == "identical" else verdict}">'
                    f"{verdict}</span>"),
        ("a", _side(a)),
        ("b", _side(b)),
        ("config fields", str(len(diff.get("config") or ()))),
        ("layers differing", str(sum(1 for p in layers if p.get("verdict") != "same"))),
        ("files", f"{real} (+{len(files) - real} mtime-only)"),
    ]  # fmt: skip
    return facts(pairs)


def _side(side: Mapping[str, Any]) -> str:
    digest = str(side.get("config_digest") or "")[:19]
    return (
        f"<code>{esc(side.get('name', ''))}</code> config <code>{esc(digest)}</code>, "
        f"{esc(side.get('layers', 0))} layers"
    )


def _value(value: object) -> str:
    if value is None:
        return "(unset)"
    return value if isinstance(value, str) else json.dumps(value)


def _config(changes: Sequence[Mapping[str, Any]]) -> str:
    if not changes:
        return ""
    rows = "".join(
        f'<tr><td class="mono">{esc(c.get("field", ""))}</td>'
        f'<td class="mono">{esc(_value(c.get("a")))}</td>'
        f'<td class="mono">{esc(_value(c.get("b")))}</td></tr>'
        for c in changes
    )
    return f"<h2>Config</h2>\n<table><tr><th>field</th><th>a</th><th>b</th></tr>{rows}</table>"


def _position(side: Mapping[str, Any] | None) -> str:
    return "-" if not side else str(side.get("layer", "?"))


def _layers(pairs: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for pair in pairs:
        sa, sb = pair.get("a"), pair.get("b")
        side = sa or sb or {}
        verdict = str(pair.get("verdict") or "")
        step = f"step {side['step']} " if side.get("step") else ""
        made = f"{step}{side.get('created_by') or ''}"
        if sa and sb and sa.get("created_by") != sb.get("created_by"):
            made += f" / b: {sb.get('created_by') or ''}"
        kind = "same" if verdict == "same" else "differs"
        rows.append(
            f'<tr class="{kind}-pair" data-tip="{esc(pair.get("reason") or verdict)}">'
            f'<td class="num">{esc(_position(sa))}/{esc(_position(sb))}</td>'
            f'<td class="mono">{esc(made)}</td>'
            f'<td><span class="badge {kind}">{esc(verdict)}</span></td>'
            f'<td>{esc(pair.get("reason") or "")}</td></tr>'
        )
        changes: list[Mapping[str, Any]] = list(pair.get("files") or ())
        if changes:
            rows.append(f'<tr class="{kind}-pair"><td></td><td colspan="3">{_pair_files(changes)}'
                        "</td></tr>")  # fmt: skip
    return (
        "<h2>Layers</h2>\n"
        '<div class="controls"><label><input type="checkbox" data-hide="same-pair"> '
        "hide layers that are the same</label></div>\n"
        "<table><tr><th>a/b</th><th>made by</th><th>verdict</th><th>why</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _pair_files(changes: Sequence[Mapping[str, Any]]) -> str:
    """A pair's files, open when the list is short enough to read at a glance."""
    real = sum(1 for c in changes if c.get("status") != "mtime-only")
    opened = " open" if len(changes) <= OPEN_UP_TO else ""
    summary = f"{real} file(s) differ (+{len(changes) - real} mtime-only)"
    return f"<details{opened}><summary>{summary}</summary>{_files_table(changes)}</details>"


def _biggest_first(changes: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Real changes first, then mtime-only ones, each biggest first (as `diff` lists them)."""
    def size_of(c: Mapping[str, Any]) -> int:
        value = c.get("size")
        return value if isinstance(value, int) else 0

    return sorted(changes, key=lambda c: (c.get("status") == "mtime-only", -size_of(c)))


def _files_table(changes: Sequence[Mapping[str, Any]]) -> str:
    ordered = _biggest_first(changes)
    rows = "".join(
        f'<tr><td>{esc(c.get("status", ""))}</td><td class="mono">{esc(c.get("path", ""))}</td>'
        f'<td class="num">{esc(size(c.get("size")))}</td>'
        f'<td>{esc(", ".join(str(w) for w in c.get("what") or ()))}</td></tr>'
        for c in ordered[:FILES_SHOWN]
    )
    more = len(ordered) - FILES_SHOWN
    tail = (
        f'<tr><td colspan="4" class="muted">... and {more} more (diff --format json lists '
        "them all)</td></tr>" if more > 0 else ""
    )
    return (
        '<table><tr><th>status</th><th>path</th><th class="num">size</th><th>what</th></tr>'
        f"{rows}{tail}</table>"
    )
