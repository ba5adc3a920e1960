"""`layerbuild build`.

The command forks the context walkers (context/prefetch.py) as soon as its options are parsed,
and only then imports the builder: the imports this module makes at its top are kept to what
forking needs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from layerbuild.cli import buildoptions, options
from layerbuild.cli.context import Context
from layerbuild.context.gitref import is_git_url
from layerbuild.context.prefetch import ListingPrefetch
from layerbuild.context.select import load_ignore
from layerbuild.entry import take_walkers
from layerbuild.errors import ContextError, ExportError
from layerbuild.ui.progressmodes import MODES

PREFETCH_ENV = "LAYERBUILD_PREFETCH"  # "0": no context walkers (docs/cache.md)

if TYPE_CHECKING:
    from layerbuild.context.ignore import IgnoreRules
    from layerbuild.digest import Digest
    from layerbuild.engine.buildrecord import BuildRecorder
    from layerbuild.engine.events import BuildEvent
    from layerbuild.engine.options import BuildOptions, BuildResult
    from layerbuild.engine.report import BuildReport
    from layerbuild.export.outputs import OutputSpec
    from layerbuild.image.descriptor import Descriptor
    from layerbuild.registry.options import RegistryOptions
    from layerbuild.store.layout import Store


@click.command("build", cls=options.BuildCommand)
@click.argument("context", default=".")
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
@click.option(
    "--platform",
    default="linux/amd64",
    show_default=True,
    help="OS/ARCH[/VARIANT], or several, comma-separated: an image index of one image each.",
)
@click.option(
    "--compression", type=click.Choice(["gzip", "zstd", "none"]), default="gzip", show_default=True
)
@click.option(
    "-o",
    "--output",
    "outputs",
    multiple=True,
    help="type=oci,dest=F | type=oci,dest=D,tar=false | type=docker,dest=F | type=local,dest=D "
    "| type=tar,dest=F | type=registry | type=image; image types also take compression=, "
    "compression-level=, force-compression=, oci-mediatypes=, annotation[-TYPE].K=V",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    metavar="N",
    help="Run up to N independent stages at once (default: the number of cores; 1: one "
    "after another, in the Dockerfile's order).",
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
    "--ssh",
    multiple=True,
    metavar="default|ID[=SOCKET]",
    help="SSH agent for RUN --mount=type=ssh (default: $SSH_AUTH_SOCK).",
)
@options.network_option(
    "Network of RUN steps: default (own namespace, outbound access), none, host."
)
@options.add_host_option(
    "Add a line to RUN's /etc/hosts; IP host-gateway means the host (see docs/run.md)."
)
@click.option("--label", "labels", multiple=True, metavar="K=V", help="Set an image label.")
@click.option(
    "--annotation",
    "annotations",
    multiple=True,
    metavar="[TYPE:]K=V",
    help="Annotate the manifest; TYPE: manifest, index, manifest-descriptor, index-descriptor.",
)
@click.option("--shm-size", metavar="SIZE", help="Size of /dev/shm in RUN steps (default 64m).")
@click.option(
    "--ulimit", "ulimits", multiple=True, metavar="TYPE=SOFT[:HARD]", help="A ulimit of RUN steps."
)
@click.option("--report", type=click.Path(path_type=Path), help="Write a per-step JSON report.")
@click.option(
    "--check", is_flag=True, help="Only run the build checks: print warnings, exit 1 on any."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Key every step and say hit, miss (why) or unknown; run none, write no image. "
    "--dry-run=strict: exit 1 if a step would miss or is unknown.",
)
@click.option("--dry-run-strict", is_flag=True, hidden=True)
@click.option(
    "--expect-cached",
    metavar="[=STAGE,...]",
    help="Fail (exit 12) at the first step that would run, of any stage or of those named.",
)
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
    help="Write build metadata (buildx's keys: digest, config digest, descriptor, names, "
    "build ref) as JSON here.",
)
@click.pass_obj
def build_cmd(ctx: Context, /, **kw: Any) -> None:
    """Build an image from a Dockerfile and a context: a directory, a git URL
    (URL#REF:SUBDIR), or - (a tar or a Dockerfile on stdin)."""
    dry = kw["dry_run"] or kw["dry_run_strict"]
    if dry:
        options.refuse_with_dry_run(kw)
        if "," in kw["platform"]:
            raise click.UsageError("--dry-run takes one --platform")
    with contextlib.ExitStack() as stack:
        if kw["context"] == "-":
            buildoptions.stdin_context(stack, kw)
        elif is_git_url(kw["context"]):
            buildoptions.git_context(stack, kw)
        else:
            kw["context"] = Path(kw["context"])
        if kw["check"]:
            _check_only(ctx, kw)
            return
        prefetch = _prefetch(kw["context"], kw["dockerfile"])
        try:
            (_dry_run if dry else _build)(ctx, kw, prefetch)
        finally:
            if prefetch is not None:
                prefetch.close()


def _check_only(ctx: Context, kw: dict[str, Any]) -> None:
    """`build --check`: the checks of every stage, nothing built; exit 1 on any warning."""
    from layerbuild.engine.buildchecks import build_checks
    from layerbuild.engine.inputs import context_ignore, read_dockerfile

    build_options = buildoptions.build_options(kw)
    dockerfile = read_dockerfile(build_options, unique_stage_names=False)  # DuplicateStageName
    # base images' ENV from the store, when there is one: --check creates no store
    store = ctx.store() if Path(ctx.store_root()).is_dir() else None
    warnings = build_checks(dockerfile, build_options, None, store, context_ignore(build_options))
    for w in warnings:
        click.echo(f"WARN: {w.short()}")
        click.echo(f"  {w.description}: {w.url}")
    n = len(warnings)
    if not n:
        click.echo("Check complete, no warnings found.")
        return
    click.echo(f"Check complete, {n} warning{'s' if n != 1 else ''} found.")
    raise SystemExit(1)


def _build(ctx: Context, kw: dict[str, Any], prefetch: ListingPrefetch | None) -> None:
    # imported once the context walkers are forked, so that the two overlap
    from layerbuild.engine.report import BuildReport
    from layerbuild.ui.progress import make_progress

    build_options = buildoptions.build_options(kw)
    mode = "quiet" if kw["quiet"] else kw["progress"]
    renderer = make_progress(mode)
    report = BuildReport(clock=time.monotonic)  # steps' starts: the HTML page's timeline
    store = ctx.store()
    recorder = _recorder(store, build_options, report)

    def emit(event: BuildEvent) -> None:
        report(event)
        renderer(event)
        if recorder is not None:
            recorder(event)

    try:
        _build_and_output(store, build_options, emit, prefetch, report, renderer.close, kw)
    except BaseException as e:  # the history keeps failed and interrupted builds too
        if recorder is not None:
            with contextlib.suppress(OSError):  # the build's own error is the one to report
                recorder.finish(e)
        raise
    if recorder is not None:
        try:
            recorder.finish(None)
        except OSError as e:  # the image is built: a history that cannot be written only warns
            click.echo(f"warning: the build history was not written: {e}", err=True)


def _recorder(
    store: Store, build_options: BuildOptions, report: BuildReport
) -> BuildRecorder | None:
    """The build's history record, written as it starts (docs/history.md); None when the
    history is turned off."""
    if not options.history_on():
        return None
    from layerbuild.engine.buildrecord import start_recording, stored_sizes

    history = options.build_history(store.builds_dir)
    return start_recording(build_options, report, history, stored_sizes(store))


def _build_and_output(
    store: Store,
    build_options: BuildOptions,
    emit: Callable[[BuildEvent], None],
    prefetch: ListingPrefetch | None,
    report: BuildReport,
    close: Callable[[], None],
    kw: dict[str, Any],
) -> None:
    from layerbuild.digest import Digest
    from layerbuild.engine import executor
    from layerbuild.engine.report import summary_line, warnings_summary
    from layerbuild.export.outputs import OutputSpec
    from layerbuild.store.cacheindex import CacheIndex

    registry = build_options.registry or options.registry_options((), None)
    specs = buildoptions.output_specs(kw["outputs"], build_options.platform)
    if kw["push"]:
        specs.append(OutputSpec("registry"))
    platforms = options.platforms(kw["platform"])
    build: Callable[..., BuildResult] = executor.build
    if len(platforms) > 1:
        buildoptions.refuse_single_platform_outputs(specs)
        from layerbuild.engine.multiplatform import build_platforms

        build = functools.partial(build_platforms, platforms=platforms)
    mode = "quiet" if kw["quiet"] else kw["progress"]
    try:
        result = build(store, build_options, emit, prefetch)
    finally:
        close()
        if kw["report"] is not None:
            kw["report"].write_text(report.dumps())
    index = CacheIndex(store.root)
    for tag in result.tags:  # what `cache compare TAG_A TAG_B` compares
        index.save_report(tag, report.to_json())
    if mode not in ("quiet", "rawjson"):
        click.echo(summary_line(report), err=True)
        if report.warnings:
            click.echo(warnings_summary(report), err=True)
    built = frozenset(Digest(s.layer) for s in report.steps if s.layer)
    _after_build(store, result, specs, kw, registry, built)


def _dry_run(ctx: Context, kw: dict[str, Any], prefetch: ListingPrefetch | None) -> None:
    """`build --dry-run[=strict]`: the verdicts as a table on stdout (docs/dry-run.md)."""
    from layerbuild.engine.dryrun import dry_run
    from layerbuild.errors import ExitCode
    from layerbuild.ui.dryrunview import DryRunView

    view = DryRunView(lambda message: click.echo(message, err=True))
    try:
        dry_run(ctx.store(), buildoptions.build_options(kw), view, prefetch)
    finally:
        if kw["report"] is not None:
            kw["report"].write_text(view.done().dumps())
    if not kw["quiet"]:
        click.echo(view.table())
    if kw["dry_run_strict"] and view.would_build():
        click.echo("--dry-run=strict: some steps would be built", err=True)
        sys.exit(ExitCode.WOULD_BUILD)


def _prefetch(context: Path, dockerfile: str | None) -> ListingPrefetch | None:
    """Walkers of the context, once its ignore rules are read as the build will read them
    (`engine/inputs.context_ignore`; the build checks that they are the same). None for a
    context that is not a directory or rules that do not parse: the build reports those.
    The walkers the program forked before the CLI was imported (layerbuild/entry.py) are
    taken when they walk this context with these rules."""
    early = take_walkers()
    wanted = os.environ.get(PREFETCH_ENV) != "0" and context.is_dir()
    ignore = _ignore(context, dockerfile) if wanted else False
    if early is not None and ignore is not False and early.covers(context, ignore):
        return early
    if early is not None:
        early.close()
    return None if ignore is False else ListingPrefetch.start(context, ignore)


def _ignore(context: Path, dockerfile: str | None) -> IgnoreRules | None | Literal[False]:
    """The context's ignore rules as the build will read them; False when they do not parse
    or the context is no directory (the build reports that)."""
    named = Path(dockerfile) if dockerfile and dockerfile != "-" else None
    try:
        return load_ignore(context, named)
    except ContextError:
        return False


def _after_build(
    store: Store,
    result: BuildResult,
    specs: list[OutputSpec],
    kw: dict[str, Any],
    registry: RegistryOptions,
    built: frozenset[Digest],
) -> None:
    if specs:
        from layerbuild.export.imagerewrite import apply_image_options
        from layerbuild.export.outputs import IMAGE_TYPES, write_output

    quiet = kw["quiet"]
    stdout_used = any(s.dest == "-" for s in specs)
    exported: Descriptor | None = None
    for spec in specs:
        # shared: gc must not take converted layers before they are written or pushed
        with store.lock(shared=True):
            desc = apply_image_options(store, result.descriptor, spec.image, built)
            if spec.type == "registry":
                note = _push_tags(store, result.tags, desc, registry)
            elif spec.type == "image" and desc != result.descriptor:
                note = _retag(store, result.tags, desc)
            else:
                note = write_output(store, desc, spec, result.tags)
        if spec.type in IMAGE_TYPES and exported is None:
            exported = desc  # as buildx, the metadata names what the image exporter made
        if quiet:
            continue
        if kw["progress"] == "rawjson":  # stderr stays one JSON object a line
            note = json.dumps({"event": "Log", "step_id": None, "message": note})
        click.echo(note, err=True)
    if kw["iidfile"] is not None or kw["metadata_file"] is not None:
        from layerbuild.export.metadata import build_metadata, write_build_file

        if kw["iidfile"] is not None:
            write_build_file(kw["iidfile"], str(result.digest), "--iidfile")
        if kw["metadata_file"] is not None:
            text = build_metadata(result, exported or result.descriptor)
            write_build_file(kw["metadata_file"], text, "--metadata-file")
    if quiet:
        # the digest goes to stderr when stdout carries an exported tarball
        click.echo(str(result.digest), err=stdout_used)


def _retag(store: Store, tags: Sequence[str], desc: Descriptor) -> str:
    from layerbuild.store.images import tag

    for name in tags:
        tag(store, name, desc)
    return f"image {desc.digest} kept in the store" + (f" as {', '.join(tags)}" if tags else "")


def _push_tags(
    store: Store, tags: Sequence[str], desc: Descriptor, registry: RegistryOptions
) -> str:
    if not tags:
        raise ExportError("--push needs a name to push to", hint="add -t REGISTRY/REPOSITORY:TAG")
    from layerbuild.registry.push import push  # http.client and ssl: only to push

    pushed = [f"{tag}@{push(store, desc, tag, options=registry).digest}" for tag in tags]
    return "pushed " + ", ".join(pushed)
