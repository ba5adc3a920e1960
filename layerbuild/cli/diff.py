"""`layerbuild diff A B`: why two images differ, as diff(1) exits: 0 identical, 1 different."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from layerbuild.cli import options
from layerbuild.cli.context import Context
from layerbuild.errors import ExitCode


@click.command("diff")
@click.argument("image_a", metavar="A")
@click.argument("image_b", metavar="B")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Files to list per layer and for the whole filesystem (text).")  # fmt: skip
@click.option("--platform", "platform_text", help="os/arch[/variant] of multi-platform images.")
@click.option("-f", "--file", "dockerfile", default="Dockerfile", show_default=True,
              help="The Dockerfile whose builds ^N counts.")  # fmt: skip
@click.option("--html", "html_file", metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the comparison as a self-contained HTML page.")  # fmt: skip
@click.pass_obj
def diff_cmd(
    ctx: Context,
    image_a: str,
    image_b: str,
    fmt: str,
    limit: int,
    platform_text: str | None,
    dockerfile: str,
    html_file: Path | None,
) -> None:
    """Show why images A and B differ: config fields, layers paired with the step that made
    each and why it differs, and the files, biggest first.

    A and B are images in the store (name:tag, digest or digest prefix), paths of OCI layout
    directories, OCI tarballs or docker-archives (a path that exists is read as a path), or
    builds of the history: an id (or a unique prefix of one) or ^N, the Nth build before the
    latest of ./Dockerfile (-f names another), as `layerbuild builds ls` lists them.
    Exits 0 when they are identical, 1 when they differ.
    """
    from layerbuild.diff.compare import compare  # codecs, tar readers
    from layerbuild.diff.targets import Resolving, resolve
    from layerbuild.image.imagediff import to_json
    from layerbuild.ui.difflisting import render

    platform = options.platform(platform_text) if platform_text else None
    with contextlib.ExitStack() as stack:
        how = Resolving(ctx.store, platform, stack, dockerfile)
        result = compare(resolve(image_a, how), resolve(image_b, how))
    if html_file is not None:
        from layerbuild.ui.diffpage import render_diff_page

        html_file.write_text(render_diff_page(to_json(result)), encoding="utf-8")
    if fmt == "json":
        click.echo(json.dumps(to_json(result), indent=2))
    else:
        click.echo(render(result, limit=limit))
    sys.exit(ExitCode.OK if result.identical else ExitCode.DIFFERENT)
