"""Image commands: `images`, `inspect`, `history`, `save`, `load`, `tag`, `rmi`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from layerbuild.cli import options
from layerbuild.cli.context import Context
from layerbuild.errors import LayerbuildError
from layerbuild.export.outputs import OutputSpec, write_output
from layerbuild.registry.reference import normalize_tag
from layerbuild.registry.repair import image_blobs, with_refetch
from layerbuild.store import images as store_images
from layerbuild.ui import listing


@click.command("images")
@click.option("--digests", is_flag=True, help="Show full digests.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def images_cmd(ctx: Context, digests: bool, fmt: str) -> None:
    """List the images in the store."""
    click.echo(listing.images(ctx.store(), full=digests, fmt=fmt))


@click.command("inspect")
@click.argument("name")
@click.option("--raw", is_flag=True, help="Print the manifest as stored.")
@click.option("--config", "config", is_flag=True, help="Print the image config as stored.")
@click.option("--platform", help="The image of this OS/ARCH[/VARIANT] of an image index.")
@click.pass_obj
def inspect_cmd(ctx: Context, name: str, raw: bool, config: bool, platform: str | None) -> None:
    """Show an image's digest, config and layers as JSON (like skopeo inspect); --raw shows
    an image index as stored."""

    store = ctx.store()
    plat = options.platform(platform) if platform else None
    if raw or config:
        click.echo(listing.raw(store, name, config=config, platform=plat))
    else:
        click.echo(json.dumps(listing.inspect(store, name, plat), indent=4))


@click.command("history")
@click.argument("name")
@click.option("--no-trunc", is_flag=True, help="Do not shorten the CREATED BY column.")
@click.option("--platform", help="The image of this OS/ARCH[/VARIANT] of an image index.")
@click.pass_obj
def history_cmd(ctx: Context, name: str, no_trunc: bool, platform: str | None) -> None:
    """Show the steps that made an image."""
    plat = options.platform(platform) if platform else None
    click.echo(listing.history(ctx.store(), name, trunc=not no_trunc, platform=plat))


@click.command("save")
@click.argument("name")
@click.option(
    "-o", "--output", "dest", required=True, help="File or directory to write (- for stdout)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["oci-archive", "oci-dir", "docker-archive"]),
    default="oci-archive",
    show_default=True,
)
@click.pass_obj
def save_cmd(ctx: Context, name: str, dest: str, fmt: str) -> None:
    """Write an image from the store to an OCI tarball, OCI layout or docker-archive."""

    store = ctx.store()
    desc = store_images.resolve(store, name)
    tags = [normalize_tag(name)] if not name.startswith("sha256:") else []
    kind = {"oci-archive": "oci", "oci-dir": "oci", "docker-archive": "docker"}[fmt]
    spec = OutputSpec(kind, dest, tar=fmt != "oci-dir")
    written = with_refetch(
        store,
        lambda: image_blobs(store, desc),
        lambda: write_output(store, desc, spec, tags),
        lambda m: click.secho(f"warning: {m}", fg="yellow", err=True),
    )
    click.echo(written, err=True)


@click.command("load")
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@click.option(
    "-t", "--tag", "tags", multiple=True, help="Also name the (single) image NAME[:TAG]."
)
@click.pass_obj
def load_cmd(ctx: Context, path: Path, tags: tuple[str, ...]) -> None:
    """Import an OCI layout, OCI tarball or docker-archive into the store."""

    store = ctx.store()
    from layerbuild.export.load import load  # tar and codecs: not for every command

    loaded = load(store, path)
    if tags:
        digests = {d.digest for _, d in loaded}
        if len(digests) != 1:
            raise LayerbuildError(
                f"{path} holds {len(digests)} images; -t needs exactly one",
                hint="load without -t, then use `layerbuild tag` on each",
            )
        for tag in tags:
            store_images.tag(store, tag, loaded[0][1])
    for name, desc in loaded:
        if name is not None or not tags:
            click.echo(f"Loaded image: {name or '(untagged)'} {desc.digest}")
    for tag in tags:
        click.echo(f"Loaded image: {normalize_tag(tag)} {loaded[0][1].digest}")


@click.command("tag")
@click.argument("source")
@click.argument("targets", nargs=-1, required=True)
@click.pass_obj
def tag_cmd(ctx: Context, source: str, targets: tuple[str, ...]) -> None:
    """Give an image more names."""

    store = ctx.store()
    desc = store_images.resolve(store, source)
    for target in targets:
        store_images.tag(store, target, desc)


@click.command("rmi")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def rmi_cmd(ctx: Context, names: tuple[str, ...]) -> None:
    """Remove image names (blobs go at the next gc)."""

    store = ctx.store()
    for name in names:
        click.echo(f"Untagged: {listing.untag(store, name)}")
