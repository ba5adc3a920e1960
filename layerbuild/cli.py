"""The `layerbuild` command: parse options, call one function, render the result.

Errors derived from LayerbuildError are rendered without a traceback (unless --debug) and exit
with the error's own status; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from layerbuild import __version__
from layerbuild.build.events import BuildEvent
from layerbuild.build.executor import build
from layerbuild.build.options import BuildOptions, BuildResult
from layerbuild.build.report import BuildReport, summary_line
from layerbuild.cli_cache import cache_specs
from layerbuild.cli_cache import register as register_cache_commands
from layerbuild.cli_registry import register as register_registry_commands
from layerbuild.cli_run import register as register_run_command
from layerbuild.cli_run import secrets_option
from layerbuild.errors import ExportError, LayerbuildError
from layerbuild.export.outputs import OutputSpec, parse_output, write_output
from layerbuild.image.descriptor import Platform
from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.reference import normalize_tag
from layerbuild.store import images as store_images
from layerbuild.store.cacheindex import CacheIndex
from layerbuild.store.layout import Store
from layerbuild.ui import listing
from layerbuild.ui.progress import MODES, make_progress


class Context:
    def __init__(self, root: Path | None, debug: bool) -> None:
        self.root = root
        self.debug = debug

    def store(self) -> Store:
        return Store.open(self.root)


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
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    _enter_userns()
    ctx.obj = Context(root, debug)


def _enter_userns() -> None:
    """As a non-root user, become root of a user namespace before anything starts a thread
    (docs/run.md, "Rootless"); commands that need no privilege still work when that fails."""
    if os.geteuid() == 0:
        return  # root, or already root of a user namespace
    # imported here: root (and every test of the CLI run as root) never needs them
    from layerbuild.sandbox.errors import SandboxError
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


def _pairs(values: Sequence[str], what: str, *, from_env: bool = False) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            if from_env and key in os.environ:
                val = os.environ[key]  # docker build --build-arg NAME takes it from the env
            elif from_env:
                continue
            else:
                raise click.BadParameter(f"{value!r} is not NAME=VALUE", param_hint=what)
        out[key] = val
    return out


def _epoch(build_args: dict[str, str]) -> int | None:
    raw = build_args.get("SOURCE_DATE_EPOCH", os.environ.get("SOURCE_DATE_EPOCH"))
    if raw in (None, ""):
        return None
    assert raw is not None
    if not raw.isdigit():
        raise click.BadParameter(f"SOURCE_DATE_EPOCH={raw!r} is not a whole number of seconds")
    return int(raw)


@main.command("build")
@click.argument("context", type=click.Path(path_type=Path), default=".")
@click.option("-t", "--tag", "tags", multiple=True, help="Name the image NAME[:TAG].")
@click.option(
    "-f", "--file", "dockerfile", help="Dockerfile (default CONTEXT/Dockerfile; - = stdin)."
)
@click.option("--target", help="Build this stage (default: the last one).")
@click.option("--build-arg", "build_args", multiple=True, help="Set a build arg NAME=VALUE.")
@click.option(
    "--build-context",
    "build_contexts",
    multiple=True,
    help="Named context NAME=oci-layout://PATH[:TAG] | docker-image://REF | DIR.",
)
@click.option("--platform", default="linux/amd64", show_default=True)
@click.option(
    "--compression", type=click.Choice(["gzip", "zstd", "none"]), default="gzip", show_default=True
)
@click.option(
    "-o",
    "--output",
    "outputs",
    multiple=True,
    help="type=oci,dest=F | type=oci,dest=D,tar=false | type=docker,dest=F | type=local,dest=D "
    "| type=tar,dest=F | type=registry",
)
@click.option("--push", is_flag=True, help="Push the tags to their registries after the build.")
@click.option("--no-cache", is_flag=True, help="Do not reuse cached steps (still record them).")
@click.option("--no-cache-filter", multiple=True, help="Do not reuse cached steps of STAGE.")
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    help="Secret for RUN --mount: id=ID,src=PATH | id=ID,env=VAR.",
)
@click.option(
    "--network", type=click.Choice(["none", "host"]), default="none", help="Network of RUN steps."
)
@click.option("--report", type=click.Path(path_type=Path), help="Write a per-step JSON report.")
@click.option(
    "--cache-to",
    multiple=True,
    help="Export the build cache: type=local,dest=DIR[,mode=max] | type=registry,ref=REF.",
)
@click.option(
    "--cache-from",
    multiple=True,
    help="Import a build cache first: type=local,src=DIR | type=registry,ref=REF.",
)
@click.option("--pull/--no-pull", "pull", default=True, help="Pull missing base images.")
@click.option("--insecure-registry", multiple=True, help="Speak plain HTTP to this registry.")
@click.option("--registry-ca", type=click.Path(path_type=Path, exists=True), help="Extra CA file.")
@click.option("--progress", type=click.Choice(MODES), default="auto", show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="Print only the image digest.")
@click.option("--iidfile", type=click.Path(path_type=Path), help="Write the image digest here.")
@click.option(
    "--metadata-file",
    type=click.Path(path_type=Path),
    help="Write build metadata (digest, tags) as JSON here.",
)
@click.pass_obj
def build_cmd(ctx: Context, /, **kw: Any) -> None:
    """Build an image from a Dockerfile and a context directory."""
    options = _build_options(kw)
    registry = options.registry or RegistryOptions()

    def run() -> None:
        specs = [parse_output(o) for o in kw["outputs"]]
        if kw["push"]:
            specs.append(OutputSpec("registry"))
        mode = "quiet" if kw["quiet"] else kw["progress"]
        renderer = make_progress(mode)
        report = BuildReport()
        store = ctx.store()

        def emit(event: BuildEvent) -> None:
            report(event)
            renderer(event)

        try:
            result = build(store, options, emit)
        finally:
            renderer.close()
            if kw["report"] is not None:
                kw["report"].write_text(report.dumps())
        index = CacheIndex(store.root)
        for tag in result.tags:  # what `cache compare TAG_A TAG_B` compares
            index.save_report(tag, report.to_json())
        if mode != "quiet":
            click.echo(summary_line(report), err=True)
        _after_build(store, result, specs, kw, registry)

    _run(ctx, run)


def _build_options(kw: dict[str, Any]) -> BuildOptions:
    args = _pairs(kw["build_args"], "--build-arg", from_env=True)
    try:
        plat = Platform.parse(kw["platform"])
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--platform") from None
    dockerfile = kw["dockerfile"]
    registry = RegistryOptions(
        insecure=frozenset(kw["insecure_registry"]), ca_file=kw["registry_ca"]
    )
    return BuildOptions(
        context=kw["context"],
        dockerfile=Path(dockerfile) if dockerfile and dockerfile != "-" else None,
        tags=kw["tags"],
        target=kw["target"],
        build_args=args,
        build_contexts=_pairs(kw["build_contexts"], "--build-context"),
        platform=plat,
        compression=kw["compression"],
        source_date_epoch=_epoch(args),
        dockerfile_text=sys.stdin.read() if dockerfile == "-" else None,
        no_cache=kw["no_cache"],
        no_cache_filter=kw["no_cache_filter"],
        registry=registry if kw["pull"] else None,
        secrets=secrets_option(kw["secrets"]),
        network=kw["network"],
        cache_to=cache_specs(kw["cache_to"], "to"),
        cache_from=cache_specs(kw["cache_from"], "from"),
    )


def _after_build(
    store: Store,
    result: BuildResult,
    specs: list[OutputSpec],
    kw: dict[str, Any],
    registry: RegistryOptions,
) -> None:
    quiet = kw["quiet"]
    stdout_used = any(s.dest == "-" for s in specs)
    for spec in specs:
        if spec.type == "registry":
            note = _push_tags(store, result, registry)
        else:
            note = write_output(store, result.descriptor, spec, result.tags)
        if not quiet:
            click.echo(note, err=True)
    if kw["iidfile"] is not None:
        _write_file(kw["iidfile"], str(result.digest), "--iidfile")
    if kw["metadata_file"] is not None:
        metadata = {
            "containerimage.digest": str(result.digest),
            "containerimage.config.digest": str(result.config.digest),
            "image.name": ",".join(result.tags),
            "containerimage.descriptor": result.descriptor.to_json(),
        }
        _write_file(kw["metadata_file"], json.dumps(metadata, indent=2) + "\n", "--metadata-file")
    if quiet:
        # the digest goes to stderr when stdout carries an exported tarball
        click.echo(str(result.digest), err=stdout_used)


def _write_file(path: Path, text: str, option: str) -> None:
    try:
        path.write_text(text)
    except OSError as e:
        raise ExportError(
            f"cannot write {option} {path}: {e.strerror or e}",
            hint="choose a path in an existing, writable directory",
        ) from None


def _push_tags(store: Store, result: BuildResult, registry: RegistryOptions) -> str:
    if not result.tags:
        raise ExportError("--push needs a name to push to", hint="add -t REGISTRY/REPOSITORY:TAG")
    from layerbuild.registry.push import push  # http.client and ssl: only to push

    pushed = [
        f"{tag}@{push(store, result.descriptor, tag, options=registry).digest}"
        for tag in result.tags
    ]
    return "pushed " + ", ".join(pushed)


@main.command("images")
@click.option("--digests", is_flag=True, help="Show full digests.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def images_cmd(ctx: Context, digests: bool, fmt: str) -> None:
    """List the images in the store."""
    _run(ctx, lambda: click.echo(listing.images(ctx.store(), full=digests, fmt=fmt)))


@main.command("inspect")
@click.argument("name")
@click.option("--raw", is_flag=True, help="Print the manifest as stored.")
@click.option("--config", "config", is_flag=True, help="Print the image config as stored.")
@click.pass_obj
def inspect_cmd(ctx: Context, name: str, raw: bool, config: bool) -> None:
    """Show an image's digest, config and layers as JSON (like skopeo inspect)."""

    def run() -> None:
        store = ctx.store()
        if raw or config:
            click.echo(listing.raw(store, name, config=config))
        else:
            click.echo(json.dumps(listing.inspect(store, name), indent=4))

    _run(ctx, run)


@main.command("history")
@click.argument("name")
@click.option("--no-trunc", is_flag=True, help="Do not shorten the CREATED BY column.")
@click.pass_obj
def history_cmd(ctx: Context, name: str, no_trunc: bool) -> None:
    """Show the steps that made an image."""
    _run(ctx, lambda: click.echo(listing.history(ctx.store(), name, trunc=not no_trunc)))


@main.command("save")
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

    def run() -> None:
        store = ctx.store()
        desc = store_images.resolve(store, name)
        tags = [normalize_tag(name)] if not name.startswith("sha256:") else []
        kind = {"oci-archive": "oci", "oci-dir": "oci", "docker-archive": "docker"}[fmt]
        spec = OutputSpec(kind, dest, tar=fmt != "oci-dir")
        click.echo(write_output(store, desc, spec, tags), err=True)

    _run(ctx, run)


@main.command("load")
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@click.option(
    "-t", "--tag", "tags", multiple=True, help="Also name the (single) image NAME[:TAG]."
)
@click.pass_obj
def load_cmd(ctx: Context, path: Path, tags: tuple[str, ...]) -> None:
    """Import an OCI layout, OCI tarball or docker-archive into the store."""

    def run() -> None:
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

    _run(ctx, run)


@main.command("tag")
@click.argument("source")
@click.argument("targets", nargs=-1, required=True)
@click.pass_obj
def tag_cmd(ctx: Context, source: str, targets: tuple[str, ...]) -> None:
    """Give an image more names."""

    def run() -> None:
        store = ctx.store()
        desc = store_images.resolve(store, source)
        for target in targets:
            store_images.tag(store, target, desc)

    _run(ctx, run)


@main.command("rmi")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def rmi_cmd(ctx: Context, names: tuple[str, ...]) -> None:
    """Remove image names (blobs go at the next gc)."""

    def run() -> None:
        store = ctx.store()
        for name in names:
            click.echo(f"Untagged: {listing.untag(store, name)}")

    _run(ctx, run)


register_registry_commands(main)
register_cache_commands(main)
register_run_command(main)
