"""Option values that more than one command takes, or that a command takes from another's
vocabulary: parsed here once, a malformed one reported as click's usage error (ExitCode.USAGE).

Each parser imports what it parses with when it is called, so that a command importing this
module pays only for the parsers it uses.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from layerbuild.image.descriptor import Platform
    from layerbuild.registry.options import RegistryOptions
    from layerbuild.registry.remotecache.spec import CacheSpec
    from layerbuild.sandbox.netfiles import HostEntry
    from layerbuild.store.buildhistory import BuildHistory


F = TypeVar("F", bound=Callable[..., object])


def network_option(help: str) -> Callable[[F], F]:
    """--network of the sandbox (build's RUN steps, run): the same modes, each command's help."""
    return click.option(
        "--network",
        type=click.Choice(["default", "none", "host"]),
        default="default",
        show_default=True,
        help=help,
    )


def add_host_option(help: str) -> Callable[[F], F]:
    """--add-host NAME:IP (build's RUN steps, run), parsed into the sandbox's HostEntry values."""
    return click.option(
        "--add-host",
        "add_hosts",
        multiple=True,
        metavar="NAME:IP",
        help=help,
        callback=lambda _ctx, _param, values: add_hosts(values),
    )


def add_hosts(values: Sequence[str]) -> tuple[HostEntry, ...]:
    from layerbuild.errors import LayerbuildError
    from layerbuild.sandbox.netfiles import parse_add_host

    try:
        return tuple(parse_add_host(v) for v in values)
    except LayerbuildError as e:
        raise click.BadParameter(f"{e.message} ({e.hint})", param_hint="--add-host") from None


def platform(text: str) -> Platform:
    """--platform os/arch[/variant] (build, pull)."""
    from layerbuild.image.descriptor import Platform

    try:
        return Platform.parse(text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--platform") from None


def platforms(text: str) -> tuple[Platform, ...]:
    """build's --platform: os/arch[/variant] or a comma-separated list of them, each
    normalized as BuildKit does (`linux/arm64/v8` is `linux/arm64`), duplicates dropped."""
    from layerbuild.image.platformmatch import normalize

    found: list[Platform] = []
    for part in text.split(","):
        plat = normalize(platform(part))
        if plat not in found:
            found.append(plat)
    return tuple(found)


def registry_options(insecure: Sequence[str], ca_file: Path | None) -> RegistryOptions:
    """--insecure-registry and --registry-ca, over the environment's settings (build, pull,
    push, login)."""
    from layerbuild.registry.options import RegistryOptions

    return RegistryOptions.from_environ(os.environ, insecure=frozenset(insecure), ca_file=ca_file)


def cache_specs(values: Sequence[str], direction: str) -> tuple[CacheSpec, ...]:
    """--cache-to / --cache-from values, as click parameter errors when malformed."""
    if not values:
        return ()  # the remote cache's module only for a build that names one
    from layerbuild.errors import LayerbuildError  # CacheError among others
    from layerbuild.registry.remotecache.spec import parse_cache_spec

    try:
        return tuple(parse_cache_spec(v, direction) for v in values)
    except LayerbuildError as e:
        raise click.BadParameter(str(e), param_hint=f"--cache-{direction}") from None


def secrets(values: Sequence[str]) -> dict[str, Path]:
    """The BuildOptions.secrets of repeated --secret flags (a later id wins, as in buildx;
    empty values are skipped, as buildx's ParseSecretSpecs does)."""
    return dict(parse_secret(v) for v in values if v)


def parse_secret(value: str) -> tuple[str, Path]:
    """One `--secret` (docker buildx syntax, engine/secretspec.py) -> (id, file to read).

    A secret from a variable is written to a private temporary file (mode 0600) that is
    removed when the process exits, so the build reads every secret the same way. As in
    BuildKit, a file named with src= (or defaulted from the id) must exist now."""
    from layerbuild.engine.secretspec import (
        env_value,
        parse_secret_spec,
        with_source,
    )
    from layerbuild.errors import SecretSpecError

    try:
        given = parse_secret_spec(value)
    except SecretSpecError as e:
        raise click.BadParameter(
            f"{value!r}: {e} (expected id=ID[,src=PATH|env=VAR][,type=file|env])",
            param_hint="--secret",
        ) from None
    spec = with_source(given, os.environ)
    path = Path(spec.src).expanduser() if spec.src else None
    if path is not None and not path.is_file():
        raise click.BadParameter(
            f"{value!r}: no environment variable {spec.id} is set and {spec.src} is not a file"
            if not (given.src or given.env)
            else f"{value!r}: {spec.src} is not a file",
            param_hint="--secret",
        )
    text = env_value(spec, os.environ)
    if text is not None:
        return spec.id, _env_secret_file(text)
    assert path is not None
    return spec.id, path


def _env_secret_file(value: str) -> Path:
    directory = tempfile.mkdtemp(prefix="layerbuild-secret-")
    atexit.register(shutil.rmtree, directory, True)
    path = Path(directory) / "secret"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.fsencode(value))  # the variable's bytes, also when they are not UTF-8
    return path


def snapshotter() -> str | None:
    """RUN's snapshotter from $LAYERBUILD_SNAPSHOTTER (docs/run.md, "Snapshotters"): the
    sandbox takes it as an argument; None lets it choose (auto)."""
    return os.environ.get("LAYERBUILD_SNAPSHOTTER") or None


class BuildCommand(click.Command):
    """`build --dry-run[=strict]` and `--expect-cached[=STAGE,...]`: a click option takes a value
    always or never, so their optional values are read here (`--dry-run ctx` must not take
    `ctx` for its value)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for arg in args:
            if arg.startswith("--dry-run=") and arg != "--dry-run=strict":
                raise click.BadParameter(
                    f"{arg}: its only value is strict", param_hint="--dry-run"
                )
        rewritten = {
            "--dry-run=strict": "--dry-run-strict",
            "--expect-cached": "--expect-cached=*",
        }
        return super().parse_args(ctx, [rewritten.get(a, a) for a in args])


def expect_cached(value: str | None, no_cache: bool) -> frozenset[str]:
    """--expect-cached's stages, lower case ("*": all); empty without the option."""
    if value is None:
        return frozenset()
    if no_cache:
        raise click.UsageError("--expect-cached cannot be used with --no-cache: drop one of them")
    stages = frozenset(s.strip().lower() for s in value.split(",") if s.strip())
    if not stages:
        raise click.BadParameter("name at least one stage", param_hint="--expect-cached")
    return stages


def refuse_with_dry_run(kw: dict[str, Any]) -> None:
    """A dry run writes no image: the build options that write one, or its cache, are
    refused."""
    for name, option in (
        ("cache_to", "--cache-to"),
        ("outputs", "--output"),
        ("push", "--push"),
        ("iidfile", "--iidfile"),
        ("metadata_file", "--metadata-file"),
    ):
        if kw[name]:
            raise click.UsageError(
                f"{option} cannot be used with --dry-run: a dry run makes no image and writes "
                "no cache; drop one of them"
            )


HISTORY_ENV = "LAYERBUILD_HISTORY"  # "0": builds leave no record (docs/history.md)
HISTORY_BUILDS_ENV = "LAYERBUILD_HISTORY_BUILDS"  # records kept (default 200)
HISTORY_BYTES_ENV = "LAYERBUILD_HISTORY_BYTES"  # and at most this many bytes of them


def history_on() -> bool:
    return os.environ.get(HISTORY_ENV) != "0"


def build_history(directory: Path) -> BuildHistory:
    """The store's build history (`Store.builds_dir`) with the bounds the environment sets."""
    from layerbuild.store.buildhistory import MAX_BUILDS, MAX_BYTES, BuildHistory

    return BuildHistory(
        directory,
        max_builds=_count(HISTORY_BUILDS_ENV, MAX_BUILDS),
        max_bytes=_count(HISTORY_BYTES_ENV, MAX_BYTES),
    )


def _count(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or int(text) < 1:
        raise click.UsageError(f"{name}={text!r}: expected a whole number above 0")
    return int(text)
