"""The `layerbuild` program: for `build`, the context walkers are forked first, then the CLI runs.

A dry run or a no-change build of a big context waits for its walkers (context/prefetch.py).
They used to be forked by the `build` command itself, after the interpreter had imported click
and the command's modules: 40-80 ms in which the second core had nothing to do. Here the
command line is read just far enough to find the context and the Dockerfile, the walkers are
forked, and only then is the CLI imported; `build` adopts them when they walked what it goes on
to build (`ListingPrefetch.covers`), and forks its own otherwise.

Nothing depends on this reading being right: an option it does not know, a second argument, a
context that is not a plain directory or a user who will enter a user namespace (the walkers
must see owners as the build does) only means no early walkers.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from layerbuild.context.prefetch import ListingPrefetch

PREFETCH_ENV = "LAYERBUILD_PREFETCH"  # "0": no context walkers (docs/cache.md)

# `build`'s options that take a value (tests/unit/test_entry.py compares with the command's)
VALUE_OPTIONS = frozenset(
    "--add-host --annotation --build-arg --build-context --cache-from --cache-to --compression "
    "--expect-cached --file --iidfile --insecure-registry --jobs --label --metadata-file "
    "--network --no-cache-filter --output --platform --progress --registry-ca --report --secret "
    "--shm-size --ssh --tag --target --ulimit -f -o -t".split()
)
# ... and those that take none; --expect-cached alone is rewritten to --expect-cached=*
FLAG_OPTIONS = frozenset(
    "--dry-run --dry-run-strict --no-cache --no-pull --pull --push --quiet -q".split()
)
_GLOBAL_VALUE_OPTIONS = frozenset({"--root"})
_GLOBAL_FLAG_OPTIONS = frozenset({"--debug"})

_early: ListingPrefetch | None = None


def main() -> None:
    """The console script: early walkers when the command line is a build, then the CLI."""
    start_walkers(sys.argv[1:])
    from layerbuild.cli import main as cli_main

    cli_main()


def build_target(argv: list[str]) -> tuple[str, str | None] | None:
    """(context, -f value) of `layerbuild [global options] build ARGS`; None when `argv` is
    another command or holds anything this reading is not sure of."""
    rest = _after_globals(argv)
    if rest is None or not rest or rest[0] != "build":
        return None
    positional: list[str] = []
    dockerfile: str | None = None
    args = iter(rest[1:])
    for arg in args:
        if arg == "--":
            positional.extend(args)
        elif arg.startswith("-") and arg != "-":
            name, eq, value = arg.partition("=")
            if arg in ("--expect-cached", "--dry-run=strict") or (not eq and name in FLAG_OPTIONS):
                continue
            if name not in VALUE_OPTIONS or (eq and not name.startswith("--")):
                return None  # unknown, --check, --help, or a short option's -t=x spelling
            if not eq:
                value = next(args, "")
            if name in ("-f", "--file"):
                dockerfile = value
        else:
            positional.append(arg)
    if len(positional) > 1:
        return None
    return (positional[0] if positional else "."), dockerfile


def _after_globals(argv: list[str]) -> list[str] | None:
    args = list(argv)
    while args and args[0].startswith("-"):
        name, eq, _ = args[0].partition("=")
        if name in _GLOBAL_FLAG_OPTIONS and not eq:
            args = args[1:]
        elif name in _GLOBAL_VALUE_OPTIONS:
            args = args[1:] if eq else args[2:]
        else:
            return None
    return args


def start_walkers(argv: list[str]) -> None:
    """Fork the walkers of the context `argv` builds, if it is sure what that is."""
    global _early
    target = build_target(argv)
    if target is None or os.environ.get(PREFETCH_ENV) == "0" or os.geteuid() != 0:
        return  # a non-root user enters a user namespace first (cli/group.py)
    context, dockerfile = target
    if context == "-" or "://" in context or context.startswith("git@"):
        return
    from pathlib import Path

    from layerbuild.context.prefetch import ListingPrefetch
    from layerbuild.context.select import load_ignore
    from layerbuild.errors import ContextError

    root = Path(context)
    if not root.is_dir():
        return
    named = Path(dockerfile) if dockerfile and dockerfile != "-" else None
    try:
        ignore = load_ignore(root, named)
    except ContextError:
        return
    import atexit

    _early = ListingPrefetch.start(root, ignore)
    atexit.register(_close)


def take_walkers() -> ListingPrefetch | None:
    """The early walkers, once: the build adopts or closes them."""
    global _early
    early, _early = _early, None
    return early


def _close() -> None:
    early = take_walkers()
    if early is not None:
        early.close()
