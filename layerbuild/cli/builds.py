"""`layerbuild builds ls|show|logs|rm|export|stats`: the build history (docs/history.md).

Records are store/buildhistory.py's; what these commands print is ui/buildlisting.py's. A
build is named by its id or a unique prefix of it, or `^N`: the Nth build before the latest
of the Dockerfile (`-f`, default ./Dockerfile), as buildx spells it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from layerbuild.cli import options
from layerbuild.cli.context import Context
from layerbuild.errors import LayerbuildError
from layerbuild.store.buildhistory import BuildHistory, status_of
from layerbuild.ui import buildlisting

_FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
_FILE = click.option(
    "-f", "--file", "dockerfile", default="Dockerfile", show_default=True,
    help="The Dockerfile `^N` and stats count builds of.",
)


def _history(ctx: Context) -> BuildHistory:
    return options.build_history(ctx.store().builds_dir)


def _find(ctx: Context, ref: str, dockerfile: str) -> dict[str, Any]:
    return _history(ctx).resolve(ref, os.path.abspath(dockerfile))


@click.group("builds")
def builds_group() -> None:
    """The builds this store remembers: list, inspect, logs, compare, statistics."""


@builds_group.command("ls")
@click.option("--dockerfile", "by_dockerfile", help="Only builds of this Dockerfile.")
@click.option("--context", "by_context", help="Only builds of this context directory.")
@click.option("-n", "--last", type=int, help="Only the newest N builds.")
@_FORMAT
@click.pass_obj
def ls_cmd(
    ctx: Context, by_dockerfile: str | None, by_context: str | None, last: int | None, fmt: str
) -> None:
    """List the builds kept, newest first: id, image, status, when, duration, cached steps."""
    records = _history(ctx).records()
    if by_dockerfile is not None:
        wanted = os.path.abspath(by_dockerfile)
        records = [r for r in records if r.get("dockerfile") == wanted]
    if by_context is not None:
        wanted = os.path.abspath(by_context)
        records = [r for r in records if r.get("context") == wanted]
    kept = records if last is None else records[: max(last, 0)]
    rows = [(r, status_of(r)) for r in kept]
    if fmt == "json":
        click.echo(json.dumps([buildlisting.ls_row(r, s) for r, s in rows], indent=2))
    else:
        click.echo(buildlisting.ls_table(rows))


@builds_group.command("show")
@click.argument("ref")
@_FILE
@click.option("--html", "html_file", metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the build as a self-contained HTML page.")  # fmt: skip
@click.pass_obj
def show_cmd(ctx: Context, ref: str, dockerfile: str, html_file: Path | None) -> None:
    """Everything a build's record holds: how it ended, each step, why each miss missed,
    and what each step that ran put in its layer."""
    record = _find(ctx, ref, dockerfile)
    status = status_of(record)
    if html_file is not None:
        from layerbuild.ui.buildpage import render_build_page

        html_file.write_text(render_build_page({**record, "status": status}), encoding="utf-8")
    click.echo(buildlisting.show_text(record, status))


@builds_group.command("logs")
@click.argument("ref")
@click.option("--step", type=int, help="Only this step's output (its #N).")
@_FILE
@click.pass_obj
def logs_cmd(ctx: Context, ref: str, step: int | None, dockerfile: str) -> None:
    """The output the build's steps printed (the last lines of each, bounded)."""
    click.echo(buildlisting.logs_text(_find(ctx, ref, dockerfile), step))


@builds_group.command("export")
@click.argument("ref")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="Write here (default: stdout)."
)
@_FILE
@click.pass_obj
def export_cmd(ctx: Context, ref: str, output: Path | None, dockerfile: str) -> None:
    """The build's whole record as JSON."""
    record = _find(ctx, ref, dockerfile)
    text = json.dumps({**record, "status": status_of(record)}, indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)


@builds_group.command("rm")
@click.argument("refs", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Remove every record.")
@_FILE
@click.pass_obj
def rm_cmd(ctx: Context, refs: tuple[str, ...], everything: bool, dockerfile: str) -> None:
    """Remove build records (the images and the cache stay)."""
    history = _history(ctx)
    if everything == bool(refs):
        raise click.UsageError("name the builds to remove, or pass --all")
    ids = (
        [str(r["id"]) for r in history.records()]
        if everything
        else [str(_find(ctx, ref, dockerfile)["id"]) for ref in refs]
    )
    for build_id in ids:
        history.remove(build_id)
        click.echo(build_id)


@builds_group.command("stats")
@click.option("-n", "--last", default=10, show_default=True, help="Over the last N builds.")
@_FILE
@_FORMAT
@click.pass_obj
def stats_cmd(ctx: Context, last: int, dockerfile: str, fmt: str) -> None:
    """Each step's hit ratio over the Dockerfile's last builds, and the inputs that made it
    miss most, with what to do about them."""
    from layerbuild.engine.buildstats import step_stats

    wanted = os.path.abspath(dockerfile)
    records = [r for r in _history(ctx).records() if r.get("dockerfile") == wanted][:last]
    if not records:
        raise LayerbuildError(
            f"no build of {wanted} in the history",
            hint="pass -f with the Dockerfile's path; `layerbuild builds ls` lists the builds",
        )
    context = Path(str(records[0].get("context", "")))
    stats = step_stats(records, lambda path: os.path.lexists(context / path))
    if fmt == "json":
        steps = [s.to_json() for s in stats]
        click.echo(json.dumps({"dockerfile": wanted, "builds": len(records), "steps": steps}))
    else:
        click.echo(buildlisting.stats_text(stats, wanted, len(records)))
