"""`layerbuild fsck [--repair] [--quick]`: check the whole store, drop what is broken.

The checks and the repair are in store/fsck.py; this module prints one line per problem and
sets the exit status for CI: OK when the store is clean (or everything found was repaired),
FSCK_PROBLEMS when problems are left.
"""

from __future__ import annotations

import sys

import click

from layerbuild.cli.context import Context
from layerbuild.errors import ExitCode
from layerbuild.store.fsck import FsckResult
from layerbuild.store.fsck import run as run_fsck


def render(result: FsckResult, *, fixed: bool) -> list[str]:
    """The report: what was repaired, what is left, and a summary line."""
    lines = [p.line(repaired=True) for p in result.repaired]
    lines += [p.line() for p in result.remaining]
    n = len(result.found)
    found = f"{n} problem{'s' if n != 1 else ''} found"
    if not n:
        lines.append("store is clean")
    elif fixed:
        lines.append(f"{found}, {len(result.repaired)} repaired, {len(result.remaining)} left")
    else:
        lines.append(f"{found}; `layerbuild fsck --repair` fixes them")
    return lines


@click.command("fsck")
@click.option("--repair", is_flag=True, help="Drop what is broken (waits for running builds).")
@click.option("--quick", is_flag=True, help="Do not re-hash blobs other than manifests.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for builds.")
@click.pass_obj
def fsck_cmd(ctx: Context, repair: bool, quick: bool, timeout: float) -> None:
    """Check the store: blobs, images, names, cache records, leftovers.

    Exits 0 when the store is clean (or --repair fixed everything), 10 when problems remain.
    """
    from layerbuild.store.layout import Store

    # not ctx.store(): opening cleans up after dead processes, which fsck reports first
    store = Store.open(ctx.root, clean=False)
    result = run_fsck(store, fix=repair, quick=quick, timeout=timeout)
    for line in render(result, fixed=repair):
        click.echo(line)
    sys.exit(ExitCode.FSCK_PROBLEMS if result.remaining else ExitCode.OK)
