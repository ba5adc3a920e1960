"""What `layerbuild analyze` prints: per-layer bars, the biggest wasted paths with their fix,
the directories that hold the bytes with their wasted share, dive's numbers and the CI rules.

On a terminal the bars are block characters and the waste is red; anywhere else the same view
is plain ASCII without escape codes, so a CI log or a pipe reads it as is.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import click

from layerbuild.analyze.report import Analysis, LayerRow, WasteRow
from layerbuild.image.wastepaths import DirShare
from layerbuild.ui.listing import human_size

_BAR = 20


def render(analysis: Analysis, *, terminal: bool, limit: int = 10) -> str:
    style = _Style(terminal)
    parts = [
        _summary(analysis),
        "\n".join(_layers(analysis, style)),
        "\n".join(_wasted(analysis, style, limit)),
        "\n".join(_tree(analysis.tree, style)),
        _dive(analysis),
    ]
    if analysis.rules:
        parts.append("\n".join(_rules(analysis, style)))
    return "\n\n".join(parts)


class _Style:
    def __init__(self, terminal: bool) -> None:
        self.terminal = terminal
        self.kept, self.waste, self.empty = ("█", "█", "·") if terminal else ("#", "x", ".")
        self.branch, self.last = ("├─ ", "└─ ") if terminal else ("|- ", "`- ")
        self.pipe = "│  " if terminal else "|  "

    def red(self, text: str) -> str:
        return click.style(text, fg="red") if self.terminal else text

    def bold(self, text: str) -> str:
        return click.style(text, bold=True) if self.terminal else text

    def bar(self, kept: int, wasted: int, scale: int) -> str:
        total = kept + wasted
        cells = 0 if not scale else math.ceil(_BAR * total / scale)
        bad = 0 if not total else min(cells, math.ceil(cells * wasted / total))
        return self.kept * (cells - bad) + self.red(self.waste * bad) + self.empty * (_BAR - cells)


def _summary(a: Analysis) -> str:
    return (
        f"Image {a.image}: {len(a.layers)} layers, {human_size(a.compressed_bytes)} compressed, "
        f"{human_size(a.content_bytes)} of files, {human_size(a.wasted_bytes)} wasted "
        f"({_percent(a.wasted_bytes, a.content_bytes)})"
    )


def _layers(a: Analysis, style: _Style) -> Iterator[str]:
    yield style.bold("Layers") + "  (bar: the layer's file bytes; red: bytes a later layer hides)"
    yield (
        f"  {'#':>2} {'COMPRESSED':>10} {'FILES':>9} {'+ADD':>6} {'~CHG':>6} {'-DEL':>5}  "
        f"{'':<{_BAR}} {'WASTED':>9}  MADE BY"
    )
    scale = max((row.stats.content_bytes for row in a.layers), default=0)
    for i, row in enumerate(a.layers):
        yield _layer_line(i, row, style, scale)


def _layer_line(i: int, row: LayerRow, style: _Style, scale: int) -> str:
    s = row.stats
    bar = style.bar(s.content_bytes - s.wasted_bytes, s.wasted_bytes, scale)
    wasted = human_size(s.wasted_bytes) if s.wasted_bytes else "-"
    return (
        f"  {i:>2} {human_size(row.compressed_bytes):>10} {human_size(s.content_bytes):>9} "
        f"{s.added:>6} {s.changed:>6} {s.deleted:>5}  {bar} {wasted:>9}  {row.origin.label()}"
    )


def _wasted(a: Analysis, style: _Style, limit: int) -> Iterator[str]:
    if not a.wasted:
        yield style.bold("Wasted") + ": nothing: no layer hides bytes of another"
        return
    yield style.bold("Wasted paths") + f", biggest first ({len(a.wasted)} in all):"
    for row in a.wasted[:limit]:
        yield from _waste_lines(row, style)
    if len(a.wasted) > limit:
        rest = sum(row.path.size for row in a.wasted[limit:])
        yield f"  ... {len(a.wasted) - limit} more paths, {human_size(rest)} (--limit to see them)"


def _waste_lines(row: WasteRow, style: _Style) -> Iterator[str]:
    p = row.path
    files = f"{p.files} files" if p.files != 1 else "1 file"
    verb = {"deleted": "deleted", "opaque": "hidden (opaque dir)", "replaced": "written again"}
    size = style.red(f"{human_size(p.size):>9}")
    yield (
        f"  {size}  /{p.path} ({files}): written by layer {p.added} "
        f"({row.added.label(40)}), {verb[p.how.value]} by layer {p.removed} "
        f"({row.removed.label(40)})"
    )
    yield f"             fix: {row.hint}"


def _tree(root: DirShare, style: _Style) -> Iterator[str]:
    yield style.bold("Directories") + " (bytes all layers ship under them; share wasted):"
    yield from _tree_lines(root, "", "", style)


def _tree_lines(node: DirShare, lead: str, branch: str, style: _Style) -> Iterator[str]:
    name = node.path.rsplit("/", 1)[-1] + "/" if node.path else "/"
    share = _percent(node.wasted, node.shipped)
    share = style.red(share) if node.wasted else share
    yield f"  {lead}{branch}{name}  {human_size(node.shipped)}  {share} wasted"
    below = lead + ("" if not branch else "   " if branch == style.last else style.pipe)
    for i, child in enumerate(node.children):
        last = i == len(node.children) - 1
        yield from _tree_lines(child, below, style.last if last else style.branch, style)


def _dive(a: Analysis) -> str:
    d = a.dive
    percent = d.user_wasted_percent
    user = "inf" if math.isinf(percent) else f"{percent:.4f}"
    return (
        f"Dive's numbers: efficiency {d.score:.4f}, wasted bytes {d.wasted_bytes} "
        f"({human_size(d.wasted_bytes)}), user wasted percent {user} "
        f"(of {human_size(d.user_size_bytes)} added on the first layer)"
    )


def _rules(a: Analysis, style: _Style) -> Iterator[str]:
    yield style.bold("CI rules:")
    for r in a.rules:
        status = "SKIP" if r.passed is None else "PASS" if r.passed else style.red("FAIL")
        detail = f": {r.message}" if r.message and r.passed is False else ""
        yield f"  {status} {r.rule} {r.limit}{detail}"


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0.0%"
