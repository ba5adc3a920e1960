"""`layerbuild df [IMAGE...]`: what the store holds on disk, per image and per part.

The figures are store/diskusage.py's; ui/diskusage.py prints them.
"""

from __future__ import annotations

import click

from layerbuild.cli.context import Context


@click.command("df")
@click.argument("images", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def df_cmd(ctx: Context, images: tuple[str, ...], fmt: str) -> None:
    """Show disk usage: per image its total, shared and unique bytes (as stored and
    unpacked), the layers images share, the store's parts (blobs, build cache, snapshots)
    adding up to its size, and what `prune` and `cache prune --all` would free."""
    from layerbuild.store.diskusage import disk_usage
    from layerbuild.ui import diskusage as view

    usage = disk_usage(ctx.store(), images)
    click.echo(view.to_json(usage) if fmt == "json" else view.table(usage))
