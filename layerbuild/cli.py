"""The `layerbuild` command: parse options, call one function, render the result.

Errors derived from LayerbuildError are rendered without a traceback (unless --debug) and exit
with the error's own status; so are the OSErrors the machine causes (errors.host_error: a full
disk, a permission, ...), which exit 9. Anything else is a bug and keeps its traceback.

Each subcommand lives in a module of its own, imported only when it runs: `build` must get to
forking its context walkers (context/prefetch.py) before the builder is imported, and no
command should pay for importing the others.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from layerbuild import __version__
from layerbuild.errors import LayerbuildError, host_error

if TYPE_CHECKING:
    from layerbuild.store.layout import Store

# name -> "module:attribute" of the click command
_COMMANDS = {
    "build": "layerbuild.cli_build:build_cmd",
    "images": "layerbuild.cli_images:images_cmd",
    "inspect": "layerbuild.cli_images:inspect_cmd",
    "history": "layerbuild.cli_images:history_cmd",
    "save": "layerbuild.cli_images:save_cmd",
    "load": "layerbuild.cli_images:load_cmd",
    "tag": "layerbuild.cli_images:tag_cmd",
    "rmi": "layerbuild.cli_images:rmi_cmd",
    "pull": "layerbuild.cli_registry:pull_cmd",
    "push": "layerbuild.cli_registry:push_cmd",
    "login": "layerbuild.cli_registry:login_cmd",
    "logout": "layerbuild.cli_registry:logout_cmd",
    "cache": "layerbuild.cli_cache:cache_group",
    "prune": "layerbuild.cli_cache:prune_cmd",
    "fsck": "layerbuild.cli_fsck:fsck_cmd",
    "run": "layerbuild.cli_run:run_cmd",
}


class _Commands(click.Group):
    """The subcommands of `_COMMANDS`, imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


class Context:
    def __init__(self, root: Path | None, debug: bool) -> None:
        self.root = root
        self.debug = debug

    def store(self) -> Store:
        from layerbuild.store.layout import Store

        return Store.open(self.root)

    def store_root(self) -> str:
        from layerbuild.store.layout import default_root

        return str((self.root if self.root is not None else default_root()).absolute())


def _fail(err: LayerbuildError) -> NoReturn:
    click.secho(f"error: {err}", fg="red", err=True)
    sys.exit(err.exit_code)


def _run(ctx: Context, fn: Callable[[], None]) -> None:
    try:
        fn()
    except LayerbuildError as e:
        if ctx.debug:
            raise
        _fail(e)
    except OSError as e:
        # the machine's refusals (disk full, permissions, ...) are errors of their own; any
        # other OSError is a bug and keeps its traceback
        failure = host_error(e, store=ctx.store_root())
        if failure is None or ctx.debug:
            raise
        _fail(failure)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="layerbuild")
@click.option(
    "--root",
    type=click.Path(path_type=Path),
    envvar="LAYERBUILD_ROOT",
    help="Store directory (default $LAYERBUILD_ROOT, else ~/.local/share/layerbuild).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, root: Path | None, debug: bool) -> None:
    """layerbuild: build OCI images from Dockerfiles, without a daemon."""
    # At exit the interpreter's last garbage collections walk every object still alive:
    # 15 ms of a 0.18 s fully cached build. Frozen objects are skipped, and a process that is
    # ending has no cycles worth freeing (atexit runs before those collections).
    atexit.register(gc.freeze)
    _enter_userns()
    ctx.obj = Context(root, debug)


def _enter_userns() -> None:
    """As a non-root user, become root of a user namespace before anything starts a thread
    (docs/run.md, "Rootless"); commands that need no privilege still work when that fails."""
    if os.geteuid() == 0:
        return  # root, or already root of a user namespace
    # imported here: root (and every test of the CLI run as root) never needs them
    from layerbuild.errors import SandboxError
    from layerbuild.sandbox.userns import enter_rootless_userns

    try:
        enter_rootless_userns(lambda m: click.secho(f"warning: {m}", fg="yellow", err=True))
    except SandboxError as e:
        click.secho(
            f"warning: {e}\nRUN steps will fail, and unpacked layers keep only your own "
            "file owners",
            fg="yellow",
            err=True,
        )
