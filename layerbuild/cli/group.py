"""The click group of `layerbuild`: its options, its commands (imported on first use), and
the one error handler (failure.py) around whichever command runs.

Each command group lives in a module of its own, imported only when it runs: `build` must get
to forking its context walkers (context/prefetch.py) before the builder is imported, and no
command should pay for importing the others.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
from pathlib import Path
from typing import Any

import click

from layerbuild import __version__
from layerbuild.cli.context import Context
from layerbuild.cli.failure import exit_on_failure

# name -> "module:attribute" of the click command
_COMMANDS = {
    "build": "layerbuild.cli.build:build_cmd",
    "images": "layerbuild.cli.images:images_cmd",
    "inspect": "layerbuild.cli.images:inspect_cmd",
    "history": "layerbuild.cli.images:history_cmd",
    "save": "layerbuild.cli.images:save_cmd",
    "load": "layerbuild.cli.images:load_cmd",
    "tag": "layerbuild.cli.images:tag_cmd",
    "rmi": "layerbuild.cli.images:rmi_cmd",
    "pull": "layerbuild.cli.registry:pull_cmd",
    "push": "layerbuild.cli.registry:push_cmd",
    "login": "layerbuild.cli.registry:login_cmd",
    "logout": "layerbuild.cli.registry:logout_cmd",
    "builds": "layerbuild.cli.builds:builds_group",
    "cache": "layerbuild.cli.cache:cache_group",
    "prune": "layerbuild.cli.cache:prune_cmd",
    "fsck": "layerbuild.cli.fsck:fsck_cmd",
    "run": "layerbuild.cli.run:run_cmd",
    "df": "layerbuild.cli.df:df_cmd",
    "analyze": "layerbuild.cli.analyze:analyze_cmd",
    "diff": "layerbuild.cli.diff:diff_cmd",
    "binfmt": "layerbuild.cli.binfmt:binfmt_cmd",
    "watch": "layerbuild.cli.watch:watch_cmd",
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

    def invoke(self, ctx: click.Context) -> Any:
        """The group's callback, then the command: failures of either end here."""
        with exit_on_failure(lambda: ctx.find_object(Context)):
            return super().invoke(ctx)


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
