"""Build cache commands: `cache ls|du|prune|compare` and `prune` (cli.py imports them when
they run), and `cache_specs` for build's --cache-to/--cache-from.

Like cli_registry, `layerbuild.cli` is imported only inside the commands.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from layerbuild.dockerfile.durations import parse_duration
from layerbuild.engine.report import BuildReport, StepRecord
from layerbuild.errors import CacheError, LayerbuildError
from layerbuild.registry.reference import normalize_tag
from layerbuild.registry.remotecache.spec import CacheSpec, parse_cache_spec
from layerbuild.store.cacheindex import CacheIndex
from layerbuild.store.gc import cache_usage, collect, prune_cache
from layerbuild.ui.listing import human_size

if TYPE_CHECKING:
    from layerbuild.cli import Context

_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$", re.IGNORECASE)


def cache_specs(values: Sequence[str], direction: str) -> tuple[CacheSpec, ...]:
    """--cache-to / --cache-from values, as click parameter errors when malformed."""
    try:
        return tuple(parse_cache_spec(v, direction) for v in values)
    except (CacheError, LayerbuildError) as e:
        raise click.BadParameter(str(e), param_hint=f"--cache-{direction}") from None


def parse_size(text: str) -> int:
    """'10GB', '512m', '1.5GiB', '1000' -> bytes (k/m/g/t are powers of 1000, with i of 1024)."""
    match = _SIZE.match(text)
    if match is None:
        raise click.BadParameter(f"{text!r} is not a size like 512MB or 2GB", param_hint="SIZE")
    number, unit, binary = match.groups()
    unit = unit.lower()
    factor = 1024 ** "kmgt".index(unit) * 1024 if binary and unit else _UNITS[unit]
    return int(float(number) * factor)


def parse_until(filters: Sequence[str]) -> float | None:
    """`--filter until=DURATION` (Go durations like 24h or 90m, or Nd for days) -> seconds."""
    seconds: float | None = None
    for item in filters:
        name, sep, value = item.partition("=")
        if name != "until" or not sep:
            raise click.BadParameter(
                f"{item!r}: only until=DURATION is supported", param_hint="--filter"
            )
        try:
            if value.endswith("d") and value[:-1].isdigit():
                seconds = int(value[:-1]) * 86400.0
            else:
                seconds = parse_duration(value) / 1e9
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is not a duration like 24h", param_hint="--filter"
            ) from None
    return seconds


def _ago(then: float, now: float) -> str:
    seconds = max(0.0, now - then)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def _run(ctx: Context, fn: Callable[[], None]) -> None:
    from layerbuild import cli

    cli._run(ctx, fn)


# -- ls / du / prune ---------------------------------------------------------------------------


def list_records(root: Path, fmt: str) -> str:
    """The cache records, most recently used first, as a table or JSON."""
    entries = sorted(CacheIndex(root).entries(), key=lambda e: e.last_used, reverse=True)
    if fmt == "json":
        rows = [
            {
                "key": str(e.record.key.digest),
                "step": e.record.step_text,
                "layer": str(e.record.layer.digest) if e.record.layer else None,
                "size": e.record.layer.size if e.record.layer else 0,
                "created": e.record.created,
                "last_used": e.last_used,
            }
            for e in entries
        ]
        return json.dumps(rows, indent=2)
    now = time.time()
    lines = [f"{'KEY':<14}{'SIZE':>9}  {'CREATED':<17}{'LAST USED':<11}STEP"]
    for e in entries:
        created = datetime.fromtimestamp(e.record.created).strftime("%Y-%m-%d %H:%M")
        step = e.record.step_text.replace("\n", "\\n")  # heredocs stay on one row
        step = step if len(step) <= 60 else step[:57] + "..."
        key = e.record.key.digest.hex[:12]
        size = human_size(e.record.layer.size) if e.record.layer else "-"
        lines.append(f"{key:<14}{size:>9}  {created:<17}{_ago(e.last_used, now):<11}{step}")
    return "\n".join(lines)


# -- compare -----------------------------------------------------------------------------------


def load_report(root: Path, name: str) -> BuildReport:
    """A --report file, or the last build report the store kept for the image `name`."""
    path = Path(name)
    if path.is_file():
        try:
            obj = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise LayerbuildError(f"cannot read the report {path}: {e}") from None
        if not isinstance(obj, dict):
            raise LayerbuildError(f"{path} is not a --report file (not a JSON object)")
        return BuildReport.from_json(obj)
    try:
        tag = normalize_tag(name)
    except LayerbuildError:
        tag = None
    saved = CacheIndex(root).load_report(tag) if tag else None
    if saved is None:
        raise LayerbuildError(
            f"{name} is neither a report file nor an image with a kept build report",
            hint="pass the files written by `build --report FILE`, or names of images built "
            "(and tagged) with layerbuild",
        )
    return BuildReport.from_json(saved)


def compare_reports(a: BuildReport, b: BuildReport) -> str:
    """Side by side, step by step (matched by stage and position): A's and B's cache, B's
    reason; then each build's hits, misses and hit ratio."""
    by_step_a = {(s.stage, s.index): s for s in a.steps}
    rows: list[tuple[str, ...]] = [("STAGE", "LINE", "INSTRUCTION", "A", "B", "REASON (B)")]
    seen = set()
    for step in b.steps:
        old = by_step_a.get((step.stage, step.index))
        seen.add((step.stage, step.index))
        rows.append(_row(step, old.cache if old else "-", step.cache, step.reason))
    for step in a.steps:
        if (step.stage, step.index) not in seen:
            rows.append(_row(step, step.cache, "-", "not in B"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
        for r in rows
    ]
    lines.append("")
    for label, report in (("A", a), ("B", b)):
        s = report.summary()
        lines.append(
            f"{label}: {s['steps']} steps, {s['hits']} hits, {s['misses']} misses, "
            f"hit ratio {s['hit_ratio']:.0%}" + (f", image {report.image}" if report.image else "")
        )
    return "\n".join(line.rstrip() for line in lines)


def _row(step: StepRecord, a: str, b: str, reason: str) -> tuple[str, ...]:
    text = step.instruction if len(step.instruction) <= 40 else step.instruction[:37] + "..."
    return (step.stage, str(step.line), text, a, b, reason if b == "miss" else reason or "")


def _compare_json(a: BuildReport, b: BuildReport) -> dict[str, Any]:
    by_step_a = {(s.stage, s.index): s for s in a.steps}
    steps = []
    for step in b.steps:
        old = by_step_a.get((step.stage, step.index))
        steps.append(
            {
                "stage": step.stage,
                "index": step.index,
                "line": step.line,
                "instruction": step.instruction,
                "a": old.cache if old else None,
                "b": step.cache,
                "reason": step.reason,
            }
        )
    return {"steps": steps, "a": a.summary(), "b": b.summary()}


# -- registration ------------------------------------------------------------------------------


@click.group("cache")
def cache_group() -> None:
    """Inspect and prune the build cache; compare two builds."""


@cache_group.command("ls")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def ls_cmd(ctx: Context, fmt: str) -> None:
    """List cache records: key, layer size, created, last used, step."""
    _run(ctx, lambda: click.echo(list_records(ctx.store().root, fmt)))


@cache_group.command("du")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def du_cmd(ctx: Context, fmt: str) -> None:
    """Bytes held by cached layers: those no tagged image needs, and in total."""

    def run() -> None:
        usage = cache_usage(ctx.store())
        if fmt == "json":
            click.echo(json.dumps(usage.__dict__, indent=2))
            return
        click.echo(f"records:      {usage.records}")
        click.echo(f"layers:       {usage.layers}")
        click.echo(f"reclaimable:  {human_size(usage.reclaimable)} ({usage.reclaimable} bytes)")
        click.echo(f"total:        {human_size(usage.total)} ({usage.total} bytes)")

    _run(ctx, run)


@cache_group.command("prune")
@click.option("-a", "--all", "everything", is_flag=True, help="Remove every cache record.")
@click.option("--keep-storage", help="Keep this much cache (e.g. 5GB), dropping the oldest.")
@click.option("--filter", "filters", multiple=True, help="until=DURATION: last used before.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for builds.")
@click.pass_obj
def cache_prune_cmd(
    ctx: Context,
    everything: bool,
    keep_storage: str | None,
    filters: tuple[str, ...],
    timeout: float,
) -> None:
    """Remove build cache records (least recently used first) and the blobs only they kept.

    Without --all only records whose layer no tagged image needs are candidates. Blobs a
    tagged image needs are never deleted; running builds finish first (gc waits for them).
    """
    keep = parse_size(keep_storage) if keep_storage is not None else None
    until = parse_until(filters)

    def run() -> None:
        result = prune_cache(
            ctx.store(),
            everything=everything,
            keep_storage=keep,
            older_than=until,
            timeout=timeout,
        )
        click.echo(
            f"removed {result.records} cache records and {result.blobs} blobs, "
            f"freed {human_size(result.freed)}"
        )

    _run(ctx, run)


@cache_group.command("compare")
@click.argument("a")
@click.argument("b")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def compare_cmd(ctx: Context, a: str, b: str, fmt: str) -> None:
    """Compare two builds step by step: --report files, or two image names."""

    def run() -> None:
        root = ctx.store().root
        report_a, report_b = load_report(root, a), load_report(root, b)
        if fmt == "json":
            click.echo(json.dumps(_compare_json(report_a, report_b), indent=2))
        else:
            click.echo(compare_reports(report_a, report_b))

    _run(ctx, run)


@click.command("prune")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for builds.")
@click.pass_obj
def prune_cmd(ctx: Context, timeout: float) -> None:
    """Remove blobs and snapshots no image and no cache record needs."""

    def run() -> None:
        removed, freed = collect(ctx.store(), timeout=timeout)
        click.echo(f"removed {len(removed)} blobs, freed {human_size(freed)}")

    _run(ctx, run)
