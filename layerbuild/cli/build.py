"""`layerbuild build`.

The command forks the context walkers (context/prefetch.py) as soon as its options are parsed,
and only then imports the builder: the imports this module makes at its top are kept to what
forking needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from layerbuild.cli import options
from layerbuild.cli.context import Context
from layerbuild.context.gitref import is_git_url
from layerbuild.context.prefetch import ListingPrefetch
from layerbuild.context.select import load_ignore
from layerbuild.errors import ContextError, ExportError
from layerbuild.ui.progress import MODES

PREFETCH_ENV = "LAYERBUILD_PREFETCH"  # "0": no context walkers (docs/cache.md)

if TYPE_CHECKING:
    from layerbuild.engine.options import BuildOptions, BuildResult
    from layerbuild.export.outputs import OutputSpec
    from layerbuild.image.descriptor import Platform
    from layerbuild.registry.options import RegistryOptions
    from layerbuild.store.layout import Store


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


@click.command("build")
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
    """Build an image from a Dockerfile and a context: a directory, a git URL
    (URL#REF:SUBDIR), or - (a tar or a Dockerfile on stdin)."""
    with contextlib.ExitStack() as stack:
        if kw["context"] == "-":
            _stdin_context(stack, kw)
        elif is_git_url(kw["context"]):
            _git_context(stack, kw)
        else:
            kw["context"] = Path(kw["context"])
        prefetch = _prefetch(kw["context"], kw["dockerfile"])
        try:
            _build(ctx, kw, prefetch)
        finally:
            if prefetch is not None:
                prefetch.close()


def _stdin_context(stack: contextlib.ExitStack, kw: dict[str, Any]) -> None:
    from layerbuild.engine.stdincontext import inner_path, stdin_context

    kw["context"], text = stack.enter_context(stdin_context(sys.stdin.buffer, kw["dockerfile"]))
    if text is not None:
        kw["stdin_dockerfile"] = text
    elif kw["dockerfile"]:  # with an archive on stdin, -f names a file inside it (as in docker)
        kw["dockerfile"] = inner_path(kw["context"], kw["dockerfile"])


def _git_context(stack: contextlib.ExitStack, kw: dict[str, Any]) -> None:
    from layerbuild.context.gitref import parse_git_url
    from layerbuild.engine.gitsource import git_context
    from layerbuild.engine.stdincontext import inner_path

    kw["context"] = stack.enter_context(git_context(parse_git_url(kw["context"]))).root
    if kw["dockerfile"] and kw["dockerfile"] != "-":  # -f names a file of the repository
        kw["dockerfile"] = inner_path(kw["context"], kw["dockerfile"])


def _build(ctx: Context, kw: dict[str, Any], prefetch: ListingPrefetch | None) -> None:
    # imported once the context walkers are forked, so that the two overlap
    from layerbuild.engine.executor import build
    from layerbuild.engine.report import BuildReport, summary_line
    from layerbuild.export.outputs import OutputSpec, parse_output
    from layerbuild.store.cacheindex import CacheIndex
    from layerbuild.ui.progress import make_progress

    if TYPE_CHECKING:
        from layerbuild.engine.events import BuildEvent

    build_options = _build_options(kw)
    registry = build_options.registry or options.registry_options((), None)
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
        result = build(store, build_options, emit, prefetch)
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


def _prefetch(context: Path, dockerfile: str | None) -> ListingPrefetch | None:
    """Walkers of the context, once its ignore rules are read as the build will read them
    (`engine/inputs.context_ignore`; the build checks that they are the same). None for a
    context that is not a directory or rules that do not parse: the build reports those."""
    if os.environ.get(PREFETCH_ENV) == "0" or not context.is_dir():
        return None
    named = Path(dockerfile) if dockerfile and dockerfile != "-" else None
    try:
        ignore = load_ignore(context, named)
    except ContextError:
        return None
    return ListingPrefetch.start(context, ignore)


def _ssh(values: Sequence[str]) -> dict[str, Path]:
    if not values:
        return {}  # the agent forwarder (sockets, threads) is imported only for --ssh
    from layerbuild.engine.sshforward import parse_ssh
    from layerbuild.errors import LayerbuildError

    try:
        return parse_ssh(values, os.environ)
    except LayerbuildError as e:
        raise click.BadParameter(f"{e.message} ({e.hint})", param_hint="--ssh") from None


def _build_options(kw: dict[str, Any]) -> BuildOptions:
    from layerbuild.engine.options import BuildOptions

    args = _pairs(kw["build_args"], "--build-arg", from_env=True)
    plat = options.platform(kw["platform"])
    dockerfile = kw["dockerfile"]
    registry = options.registry_options(kw["insecure_registry"], kw["registry_ca"])
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
        dockerfile_text=kw.get("stdin_dockerfile")
        or (sys.stdin.read() if dockerfile == "-" else None),
        no_cache=kw["no_cache"],
        no_cache_filter=kw["no_cache_filter"],
        registry=registry if kw["pull"] else None,
        secrets=options.secrets(kw["secrets"]),
        ssh=_ssh(kw["ssh"]),
        network=kw["network"],
        add_hosts=kw["add_hosts"],
        cache_to=options.cache_specs(kw["cache_to"], "to"),
        cache_from=options.cache_specs(kw["cache_from"], "from"),
        **_image_and_limits(kw, plat),
        quick_keys=_speedup("LAYERBUILD_QUICK_KEYS"),
        speculative_packing=_speedup("LAYERBUILD_SPECULATIVE_PACKING"),
        snapshots_ahead=_speedup("LAYERBUILD_SNAPSHOTS_AHEAD"),
        run_ahead=_speedup("LAYERBUILD_RUN_AHEAD"),
        block_reuse=_speedup("LAYERBUILD_BLOCK_REUSE"),
        splice=_speedup("LAYERBUILD_SPLICE"),
        snapshotter=options.snapshotter(),
        statcache_stats=_path_from_env("LAYERBUILD_STATCACHE_STATS"),
        blockcache_stats=_path_from_env("LAYERBUILD_BLOCKCACHE_STATS"),
        splice_stats=_path_from_env("LAYERBUILD_SPLICE_STATS"),
    )


def _path_from_env(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value) if value else None


def _speedup(variable: str) -> bool:
    """Whether a speed-up is on: "0" turns it off (docs/cache.md, "Speed-ups"), to show that
    it changes no result. The variables are read here only, as BuildOptions fields."""
    return os.environ.get(variable) != "0"


def _image_and_limits(kw: dict[str, Any], plat: Platform) -> dict[str, Any]:
    """--label, --annotation (image metadata), --shm-size and --ulimit (RUN's resources)."""
    from layerbuild.errors import AnnotationSpecError, LimitSpecError
    from layerbuild.image.annotations import parse_annotations
    from layerbuild.sandbox.limits import parse_size, parse_ulimits

    out: dict[str, Any] = {"labels": _pairs(kw["labels"], "--label")}
    for name, parse in (
        ("annotations", lambda: parse_annotations(kw["annotations"], plat)),
        ("shm_size", lambda: parse_size(kw["shm_size"]) or None if kw["shm_size"] else None),
        ("ulimits", lambda: parse_ulimits(kw["ulimits"])),
    ):
        try:
            out[name] = parse()
        except (AnnotationSpecError, LimitSpecError) as e:
            option = "--" + name.rstrip("s").replace("_", "-")
            raise click.BadParameter(str(e), param_hint=option) from None
    return out


def _after_build(
    store: Store,
    result: BuildResult,
    specs: list[OutputSpec],
    kw: dict[str, Any],
    registry: RegistryOptions,
) -> None:
    from layerbuild.export.outputs import write_output

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
