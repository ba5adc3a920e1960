"""`layerbuild watch [CONTEXT] [-f FILE]`: keep a context's listing current for its builds.

Opt-in: a build uses the watcher of its context when one runs and vouches that nothing changed
(context/watcher.py); with none running, builds walk the context as always.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from types import FrameType

import click

from layerbuild.errors import ContextError


@click.command("watch")
@click.argument("context", default=".", type=click.Path(path_type=Path))
@click.option(
    "-f", "--file", "dockerfile", help="The Dockerfile the builds name (its .dockerignore)."
)
def watch_cmd(context: Path, dockerfile: str | None) -> None:
    """Watch the build context CONTEXT (inotify) so that a build of it, as long as nothing in
    it changed, takes the listing from here instead of walking it; runs until interrupted."""
    from layerbuild.context.watchclient import SOCKET_DIR, socket_path
    from layerbuild.context.watcher import ContextWatcher, remote_file_system, serve

    if os.geteuid() != 0:
        raise ContextError(
            "layerbuild watch serves builds run as root only",
            hint="rootless builds see owners through their user namespace: they walk the context",
        )
    if not context.is_dir():
        raise ContextError(f"the build context {context} is not a directory")
    root = os.path.realpath(context)
    remote = remote_file_system(root)
    if remote is not None:
        raise ContextError(
            f"{root} is on a network file system ({remote}): changes made on other machines "
            "queue no event here, so a watcher could vouch for a stale listing",
            hint="builds of this context walk it; there is nothing to watch",
        )
    os.makedirs(SOCKET_DIR, mode=0o700, exist_ok=True)
    path = socket_path(root)
    _claim(path)
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    named = os.path.abspath(dockerfile) if dockerfile else None
    watcher = ContextWatcher(root, named, lambda m: click.echo(m, err=True))
    click.echo(f"watching {root} (socket {path})", err=True)
    try:
        serve(watcher, path, lambda: bool(stopping))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _claim(path: str) -> None:
    """Remove the socket a watcher that is gone left; refuse when one still answers."""
    import socket

    if not os.path.lexists(path):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # nobody listens: left by a watcher that was killed
            return
    raise ContextError(
        f"a watcher of this context is already running (socket {path})",
        hint="stop it first, or let the builds use it",
    )
