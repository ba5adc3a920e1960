"""The one place where an error ends the command with its exit status (errors.ExitCode).

Errors derived from LayerbuildError are rendered without a traceback (unless --debug) and exit
with the error's own status; so are the OSErrors the machine causes (errors.host_error: a full
disk, a permission, ...), which exit HOST. Ctrl-C exits INTERRUPTED. Anything else is a bug and
keeps its traceback. What click handles itself stays with click: its usage errors (USAGE), an
Abort (a Ctrl-C at a prompt, or before a command runs: "Aborted!", FAILURE) and a broken pipe
on stdout (FAILURE, without a traceback).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import NoReturn

import click

from layerbuild.cli.context import Context
from layerbuild.errors import ExitCode, LayerbuildError
from layerbuild.hosterrors import host_error


@contextlib.contextmanager
def exit_on_failure(context: Callable[[], Context | None]) -> Iterator[None]:
    """Run the block; a failure ends the process with its status. `context`: the command's
    Context once the group has made it (None if the failure came first)."""
    try:
        yield
    except LayerbuildError as e:
        if _debug(context()):
            raise
        _fail(e)
    except OSError as e:
        # the machine's refusals (disk full, permissions, ...) are errors of their own; any
        # other OSError is a bug and keeps its traceback (EPIPE goes on to click, see above)
        obj = context()
        failure = host_error(e, store=obj.store_root() if obj is not None else None)
        if failure is None or _debug(obj):
            raise
        _fail(failure)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)


def _debug(obj: Context | None) -> bool:
    return obj is not None and obj.debug


def _fail(err: LayerbuildError) -> NoReturn:
    click.secho(f"error: {err}", fg="red", err=True)
    sys.exit(err.exit_code)
