"""Registry commands: pull, push, login, logout."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from layerbuild.cli import options
from layerbuild.cli.context import Context
from layerbuild.errors import LayerbuildError
from layerbuild.registry import credentials
from layerbuild.registry.progress import (
    BYTES,
    CORRUPT,
    DONE,
    EXISTS,
    MOUNTED,
    STARTED,
    TransferEvent,
)
from layerbuild.registry.reference import parse_reference
from layerbuild.store import images as store_images

F = TypeVar("F", bound=Callable[..., Any])
_LABELS = {
    ("pull", EXISTS): "Already exists",
    ("pull", STARTED): "Pulling",
    ("pull", DONE): "Pull complete",
    ("push", EXISTS): "Layer already exists",
    ("push", STARTED): "Pushing",
    ("push", DONE): "Pushed",
}


def _connection_options(fn: F) -> F:
    fn = click.option(
        "--registry-ca",
        type=click.Path(path_type=Path, exists=True, dir_okay=False),
        help="Also trust this PEM CA bundle for registry TLS.",
    )(fn)
    return click.option(
        "--insecure-registry",
        "insecure",
        multiple=True,
        metavar="HOST[:PORT]",
        help="Use plain HTTP for this registry (localhost and 127.0.0.1 always do).",
    )(fn)


def _reporter(verb: str, quiet: bool) -> Callable[[TransferEvent], None]:
    """Prints one line per blob state change on stderr (byte counts are not printed)."""

    def report(event: TransferEvent) -> None:
        # a damaged store is said even with -q: the user should know of it
        if (quiet and event.action != CORRUPT) or event.action == BYTES:
            return
        if event.action == MOUNTED:
            label = f"Mounted from {event.source}"
        elif event.action == CORRUPT:
            label = f"Stored copy is corrupt ({event.reason}): removed, pulling it again"
        else:
            label = _LABELS.get((verb, event.action), event.action)
        size = f" ({event.size / 1e6:.1f} MB)" if event.action == STARTED else ""
        click.echo(f"{event.digest.short}: {label}{size}", err=True)

    return report


@click.command("pull")
@click.argument("ref")
@click.option("--platform", help="os/arch[/variant] to pick from a multi-platform image.")
@_connection_options
@click.option("-q", "--quiet", is_flag=True, help="Print only the full image name.")
@click.option(
    "--verify",
    is_flag=True,
    help="Hash every blob of the image already in the store (by default: their sizes, and "
    "the content of those up to 16 MiB); a damaged one is pulled again.",
)
@click.pass_obj
def pull_cmd(
    ctx: Context,
    ref: str,
    platform: str | None,
    insecure: tuple[str, ...],
    registry_ca: Path | None,
    quiet: bool,
    verify: bool,
) -> None:
    """Pull an image from a registry into the store (busybox = docker.io/library/busybox)."""
    plat = options.platform(platform) if platform else None

    reference = parse_reference(ref)
    from layerbuild.registry.pull import pull  # http.client, ssl: imported when used

    desc = pull(
        ctx.store(),
        ref,
        platform=plat,
        options=options.registry_options(insecure, registry_ca),
        on_progress=_reporter("pull", quiet),
        verify=verify,
    )
    if not quiet:
        click.echo(f"Digest: {desc.digest}")
    click.echo(reference.full_name)


@click.command("push")
@click.argument("name")
@click.argument("dest", required=False)
@_connection_options
@click.option("-q", "--quiet", is_flag=True, help="Print only the pushed digest.")
@click.pass_obj
def push_cmd(
    ctx: Context,
    name: str,
    dest: str | None,
    insecure: tuple[str, ...],
    registry_ca: Path | None,
    quiet: bool,
) -> None:
    """Push image NAME from the store to DEST (default: NAME, e.g. localhost:5000/app:1)."""

    target = dest or name
    reference = parse_reference(target)
    store = ctx.store()
    desc = store_images.resolve(store, name)
    if not quiet:
        click.echo(f"The push refers to repository [{reference.name}]", err=True)
    from layerbuild.registry.push import push  # http.client, ssl: imported when used
    from layerbuild.registry.repair import image_blobs, with_refetch

    pushed = with_refetch(
        store,
        lambda: image_blobs(store, desc),
        lambda: push(
            store,
            desc,
            target,
            options=options.registry_options(insecure, registry_ca),
            on_progress=_reporter("push", quiet),
        ),
        lambda m: click.secho(f"warning: {m}", fg="yellow", err=True),
    )
    if quiet:
        click.echo(str(pushed.digest))
    else:
        label = reference.tag or reference.digest
        click.echo(f"{label}: digest: {pushed.digest} size: {pushed.size}")


def _registry_name(text: str) -> str:
    """'https://index.docker.io/v1/' and 'docker.io' -> 'docker.io'; 'host:5000/' -> host:5000."""
    bare = text.strip().removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    if bare in ("", "index.docker.io", "registry-1.docker.io"):
        return credentials.DOCKER_HUB
    return bare


@click.command("login")
@click.argument("registry", default=credentials.DOCKER_HUB)
@click.option("-u", "--username", help="User name (prompted for when missing).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@_connection_options
@click.pass_obj
def login_cmd(
    ctx: Context,
    registry: str,
    username: str | None,
    password_stdin: bool,
    insecure: tuple[str, ...],
    registry_ca: Path | None,
) -> None:
    """Check credentials against REGISTRY and store them in the docker config."""

    host = _registry_name(registry)
    user = username or click.prompt("Username", err=True)
    if password_stdin:
        secret = sys.stdin.read().rstrip("\r\n")
    else:
        secret = click.prompt("Password", hide_input=True, err=True)
    if not user or not secret:
        raise LayerbuildError(
            "a user name and a password are needed to log in",
            hint="pass -u USER and the password on stdin with --password-stdin",
        )
    creds = credentials.Credentials(user, secret)
    from layerbuild.registry.client import RegistryClient  # http.client, ssl: when used

    client = RegistryClient(
        host,
        options.registry_options(insecure, registry_ca),
        creds=creds,
        lookup_credentials=False,
    )
    try:
        client.ping()
    finally:
        client.close()
    path = credentials.store(host, creds)
    click.echo(f"credentials saved in {path}", err=True)
    click.echo("Login Succeeded")


@click.command("logout")
@click.argument("registry", default=credentials.DOCKER_HUB)
@click.pass_obj
def logout_cmd(ctx: Context, registry: str) -> None:
    """Remove the stored credentials of REGISTRY from the docker config."""

    host = _registry_name(registry)
    if credentials.erase(host):
        click.echo(f"Removing login credentials for {host}")
    else:
        click.echo(f"Not logged in to {host}")
