"""A build as one HTML page: the header, the step timeline (hit or miss, the miss's reason on
hover) and the layers with their sizes (docs/html-pages.md).

Pure: it takes the JSON of a build, either a `--report` file (engine/report.py) or a build
history record, which holds the same steps plus what a report leaves out (id, status, error,
tags, each step's `layer_size` and `files`), and returns the page's text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from layerbuild.ui.htmlpage import document, esc, facts, size
from layerbuild.ui.timeline import Bar, layout


def render_build_page(report_json: Mapping[str, Any], *, title: str | None = None) -> str:
    """The page of one build; `title` defaults to the image's tags or digest."""
    steps: list[Mapping[str, Any]] = [s for s in report_json.get("steps") or () if s]
    name = title or _name(report_json)
    body = [
        f"<h1>Build: {esc(name)}</h1>",
        _header(report_json, steps),
        _timeline(steps, _float(report_json.get("seconds"))),
        _layers(steps),
        _warnings(report_json.get("warnings") or ()),
    ]
    return document(f"layerbuild build: {name}", "\n".join(p for p in body if p))


def build_status(report_json: Mapping[str, Any]) -> str:
    """A history record says how the build ended; a report only shows it: a step that failed,
    or an image made."""
    if report_json.get("status"):
        return str(report_json["status"])
    if report_json.get("dry_run"):
        return "dry run"
    if any(s.get("cache") == "error" for s in report_json.get("steps") or ()):
        return "failed"
    return "completed" if report_json.get("image") else "incomplete"


def _name(report: Mapping[str, Any]) -> str:
    tags = [str(t) for t in report.get("tags") or ()]
    if tags:
        return ", ".join(tags)
    image = report.get("image")
    return str(image)[:19] if image else str(report.get("id") or "(no image)")


def _header(report: Mapping[str, Any], steps: Sequence[Mapping[str, Any]]) -> str:
    status = build_status(report)
    counted = [s for s in steps if s.get("cache") in ("hit", "miss")]
    hits = sum(1 for s in counted if s.get("cache") == "hit")
    pairs = [
        ("status", f'<span class="badge {esc(status)}">{esc(status)}</span>'),
        ("duration", f"{_float(report.get('seconds')):.2f}s"),
        ("steps cached", f"{hits}/{len(counted)}"),
        ("image", f'<code>{esc(report.get("image") or "none")}</code>'),
    ]
    for key in ("id", "dockerfile", "context", "target", "platform"):
        if report.get(key):
            pairs.append((key, f"<code>{esc(report[key])}</code>"))
    if isinstance(report.get("started"), int | float):
        when = datetime.fromtimestamp(float(report["started"]), UTC)
        pairs.append(("started", esc(when.strftime("%Y-%m-%d %H:%M:%S UTC"))))
    out = facts(pairs)
    if report.get("error"):
        out += f'<p class="error">error: <code>{esc(report["error"])}</code></p>'
    return out


def _tip(step: Mapping[str, Any], bar: Bar) -> str:
    cache = str(step.get("cache") or "")
    when = f"started at {bar.start:.2f}s, " if bar.measured else ""
    text = f"{cache}, {when}took {bar.seconds:.2f}s"
    reason = str(step.get("reason") or "")
    return f"{text}: {reason}" if reason and cache != "hit" else text


def _timeline(steps: Sequence[Mapping[str, Any]], total: float) -> str:
    bars = layout(steps, total)
    rows = []
    for step, bar in zip(steps, bars, strict=True):
        cache = esc(step.get("cache") or "")
        tip = esc(_tip(step, bar))
        label = f"[{step.get('stage', '')} {step.get('index', '')}] {step.get('instruction', '')}"
        rows.append(
            f'<div class="step {cache}-row" data-tip="{tip}" title="{tip}">'
            f'<div class="label mono">{esc(label)}</div>'
            f'<div class="track"><div class="bar {cache}" '
            f'style="left:{bar.left}%;width:{bar.width}%"></div></div>'
            f'<div class="num mono">{bar.seconds:.2f}s</div></div>'
        )
    rows.append(_axis(max([total, *(b.end for b in bars)])))
    note = "" if all(b.measured for b in bars) else (
        '<p class="muted">This report has no start times: steps are drawn one after the '
        "other.</p>"
    )
    return (
        "<h2>Steps</h2>\n"
        '<div class="legend"><span><i class="bar hit" style="position:static"></i>cached</span>'
        '<span><i class="bar miss" style="position:static"></i>built (a miss)</span>'
        '<span><i class="bar error" style="position:static"></i>failed</span></div>\n'
        '<div class="controls"><label><input type="checkbox" data-hide="hit-row"> '
        "hide cached steps</label></div>\n"
        f'{note}<div class="timeline">{"".join(rows)}</div>'
    )


def _axis(span: float) -> str:
    ticks = "".join(
        f'<span style="left:{p}%">{span * p / 100:.1f}s</span>' for p in range(0, 101, 25)
    )
    return f'<div class="step"><div></div><div class="axis">{ticks}</div><div></div></div>'


def _layers(steps: Sequence[Mapping[str, Any]]) -> str:
    with_layer = [s for s in steps if s.get("layer")]
    if not with_layer:
        return ""
    sizes = [v for s in with_layer if isinstance(v := s.get("layer_size"), int)]
    biggest = max(sizes or [0])
    files = any(isinstance(s.get("files"), Mapping) for s in with_layer)
    rows = []
    for step in with_layer:
        cells = [
            f'<td class="mono">{esc(step.get("line", ""))}</td>',
            f'<td class="mono">{esc(step.get("instruction", ""))}</td>',
            f'<td class="mono">{esc(str(step["layer"])[:19])}</td>',
        ]
        if sizes:
            cells.append(_size_cells(step.get("layer_size"), biggest))
        if files:
            cells.append(f"<td>{_files(step.get('files'))}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    heads = "<th>line</th><th>step</th><th>layer</th>"
    heads += '<th class="num">size</th><th></th>' if sizes else ""
    heads += "<th>files</th>" if files else ""
    # a --report names each step's layer but not its size (a history record has both)
    note = "" if sizes else '<p class="muted">This report holds no layer sizes.</p>'
    return f"<h2>Layers</h2>\n{note}<table><tr>{heads}</tr>{''.join(rows)}</table>"


def _size_cells(value: object, biggest: int) -> str:
    width = round(200 * value / biggest) if isinstance(value, int) and biggest else 0
    return (
        f'<td class="num">{esc(size(value) or "?")}</td>'
        f'<td><span class="sizebar" style="width:{width}px"></span></td>'
    )


def _files(summary: object) -> str:
    """A history record's summary of what the layer wrote (engine/layerfiles.py)."""
    if not isinstance(summary, Mapping):
        return ""
    counts = (
        f"{esc(summary.get('written', 0))} written, {esc(summary.get('removed', 0))} removed, "
        f"{esc(size(summary.get('bytes')) or '0B')}"
    )
    paths = [str(p) for p in summary.get("paths") or ()]
    if not paths:
        return counts
    listed = "".join(f"<div class=\"mono\">{esc(p)}</div>" for p in paths)
    return f"<details><summary>{counts}</summary>{listed}</details>"


def _warnings(warnings: Sequence[Mapping[str, Any]]) -> str:
    if not warnings:
        return ""
    rows = "".join(
        f'<tr><td class="num">{esc(w.get("line", ""))}</td><td>{esc(w.get("rule", ""))}</td>'
        f'<td>{esc(w.get("message", ""))}</td></tr>'
        for w in warnings
    )
    return (
        f"<h2>Build check warnings ({len(warnings)})</h2>\n"
        f"<table><tr><th>line</th><th>rule</th><th>message</th></tr>{rows}</table>"
    )


def _float(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
