"""`layerbuild run`: run a built image in the RUN sandbox (engine/runimage.py).

Nothing of a run is kept, so `--rm` is the only behaviour; the flag is accepted for `docker run`
muscle memory.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from layerbuild.cli import options
from layerbuild.cli.context import Context
from layerbuild.store import images as store_images

if TYPE_CHECKING:
    from layerbuild.sandbox.netfiles import HostEntry


@click.command(
    "run", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": False}
)
@click.option("--rm", is_flag=True, help="Accepted for docker compatibility: runs never persist.")
@click.option("-e", "--env", "env", multiple=True, help="Set K=V (or pass K from the caller).")
@options.network_option("default: own network namespace with outbound access (slirp4netns).")
@options.add_host_option("Add a line to /etc/hosts (IP host-gateway: the host).")
@click.option("-u", "--user", help="Run as USER[:GROUP] (names from the image's /etc/passwd).")
@click.option("-w", "--workdir", help="Working directory inside the image.")
@click.option("--entrypoint", help="Replace the image's ENTRYPOINT ('' clears it).")
@click.option(
    "--platform", help="The image of this OS/ARCH[/VARIANT] of an image index (QEMU if foreign)."
)
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def run_cmd(
    ctx: Context,
    rm: bool,
    env: tuple[str, ...],
    network: str,
    add_hosts: tuple[HostEntry, ...],
    user: str | None,
    workdir: str | None,
    entrypoint: str | None,
    platform: str | None,
    image: str,
    command: tuple[str, ...],
) -> None:
    """Run IMAGE [COMMAND...] in the build sandbox; exits with the command's status."""
    from layerbuild.engine.runimage import run_image
    from layerbuild.registry.repair import image_blobs, with_refetch

    del rm  # a run's changes are always discarded
    store = ctx.store()
    desc = store_images.resolve(store, image)
    status = with_refetch(
        store,
        lambda: image_blobs(store, desc),
        lambda: run_image(
            store,
            image,
            command,
            env=env,
            user=user,
            workdir=workdir,
            network=network,
            entrypoint=entrypoint,
            add_hosts=add_hosts,
            snapshotter=options.snapshotter(),
            platform=options.platform(platform) if platform else None,
        ),
        lambda m: click.secho(f"warning: {m}", fg="yellow", err=True),
    )
    sys.exit(status)  # the command's own status, not one of ExitCode
