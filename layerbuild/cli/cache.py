"""Build cache commands: `cache ls|du|prune|compare`, and `prune` of the whole store.

What `cache ls` and `cache compare` print is ui/cachelisting.py's.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from typing import Any

import click

from layerbuild.cli import options
from layerbuild.cli.context import Context
from layerbuild.dockerfile.durations import parse_duration
from layerbuild.store.gc import cache_usage, collect, prune_cache
from layerbuild.ui import cachelisting
from layerbuild.ui.listing import human_size

_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$", re.IGNORECASE)


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


@click.group("cache")
def cache_group() -> None:
    """Inspect and prune the build cache; compare two builds."""


@cache_group.command("ls")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def ls_cmd(ctx: Context, fmt: str) -> None:
    """List cache records: key, layer size, created, last used, step."""
    click.echo(cachelisting.list_records(ctx.store().root, fmt))


@cache_group.command("du")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def du_cmd(ctx: Context, fmt: str) -> None:
    """Bytes held by cached layers: those no tagged image needs, and in total."""

    usage = cache_usage(ctx.store())
    if fmt == "json":
        click.echo(json.dumps(usage.__dict__, indent=2))
        return
    click.echo(f"records:      {usage.records}")
    click.echo(f"layers:       {usage.layers}")
    click.echo(f"reclaimable:  {human_size(usage.reclaimable)} ({usage.reclaimable} bytes)")
    click.echo(f"total:        {human_size(usage.total)} ({usage.total} bytes)")


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

    result = prune_cache(
        ctx.store(),
        everything=everything,
        keep_storage=keep,
        older_than=until,
        timeout=timeout,
    )
    click.echo(
        f"removed {result.records} cache records and {result.blobs} blobs, "
        f"freed {human_size(result.freed)} ({result.freed} bytes)"
    )


@cache_group.command("compare")
@click.argument("a", required=False)
@click.argument("b", required=False)
@click.option("-f", "--file", "dockerfile", default="Dockerfile", show_default=True,
              help="Whose builds `^N` and no argument name.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def compare_cmd(ctx: Context, a: str | None, b: str | None, dockerfile: str, fmt: str) -> None:
    """Compare two builds step by step: --report files, image names, or build ids of the
    history (a prefix, or ^N: the Nth build before the latest of the Dockerfile). With no
    argument: the last two builds of ./Dockerfile (-f another)."""
    if a is None:
        a, b = "^1", "^0"
    elif b is None:
        raise click.UsageError("give two builds to compare, or none (the last two)")
    root = ctx.store().root
    history = options.build_history(ctx.store().builds_dir)
    wanted = os.path.abspath(dockerfile)

    def build(ref: str) -> dict[str, Any] | None:
        return history.find(ref, wanted)

    report_a = cachelisting.load_report(root, a, build)
    report_b = cachelisting.load_report(root, b, build)
    if fmt == "json":
        click.echo(json.dumps(cachelisting.compare_json(report_a, report_b), indent=2))
    else:
        click.echo(cachelisting.compare_reports(report_a, report_b))


@click.command("prune")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for builds.")
@click.pass_obj
def prune_cmd(ctx: Context, timeout: float) -> None:
    """Remove blobs and snapshots no image and no cache record needs."""

    store = ctx.store()
    removed, freed = collect(store, timeout=timeout)
    click.echo(f"removed {len(removed)} blobs, freed {human_size(freed)} ({freed} bytes)")
    history = options.build_history(store.builds_dir)  # its bounds, as builds apply them
    history.clean()
    dropped = history.retain(full=True)
    if dropped:
        click.echo(f"removed {len(dropped)} build records beyond the history's bounds")
