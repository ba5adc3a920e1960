"""`layerbuild build`'s options as the engine takes them: BuildOptions from what click parsed,
the LAYERBUILD_* speed-up switches and stats files included (read here, in cli/, only), and the
`-o` specs. Malformed values are click usage errors (ExitCode.USAGE).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from layerbuild.cli import options

if TYPE_CHECKING:
    from layerbuild.engine.options import BuildOptions
    from layerbuild.export.outputs import OutputSpec
    from layerbuild.image.descriptor import Platform


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


def output_specs(values: Sequence[str], plat: Platform) -> list[OutputSpec]:
    from layerbuild.errors import OutputSpecError
    from layerbuild.export.outputs import parse_output

    try:
        return [parse_output(v, plat) for v in values]
    except OutputSpecError as e:
        raise click.BadParameter(str(e), param_hint="'-o' / '--output'") from None


def _ssh(values: Sequence[str]) -> dict[str, Path]:
    if not values:
        return {}  # the agent forwarder (sockets, threads) is imported only for --ssh
    from layerbuild.engine.sshforward import parse_ssh
    from layerbuild.errors import LayerbuildError

    try:
        return parse_ssh(values, os.environ)
    except LayerbuildError as e:
        raise click.BadParameter(f"{e.message} ({e.hint})", param_hint="--ssh") from None


def build_options(kw: dict[str, Any]) -> BuildOptions:
    from layerbuild.engine.options import BuildOptions

    args = _pairs(kw["build_args"], "--build-arg", from_env=True)
    plat = options.platforms(kw["platform"])[0]  # a build of several: cli/build.py
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
        expect_cached=options.expect_cached(kw["expect_cached"], kw["no_cache"]),
        jobs=kw.get("jobs") or len(os.sched_getaffinity(0)),
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


def refuse_single_platform_outputs(specs: Sequence[OutputSpec]) -> None:
    """Outputs that hold one platform's image cannot take a build of several (as in buildx)."""
    for spec in specs:
        if spec.type == "docker":
            raise click.BadParameter(
                "type=docker cannot export an image of several platforms (a docker-archive "
                "holds one image per name): use type=oci, or build one --platform",
                param_hint="'-o' / '--output'",
            )
        if spec.type in ("local", "tar"):
            raise click.BadParameter(
                f"type={spec.type} writes one root filesystem: build one --platform for it",
                param_hint="'-o' / '--output'",
            )


def stdin_context(stack: contextlib.ExitStack, kw: dict[str, Any]) -> None:
    """`build -`: the context (or the Dockerfile) read from stdin, for as long as `stack`."""
    from layerbuild.engine.stdincontext import inner_path
    from layerbuild.engine.stdincontext import stdin_context as read_stdin

    kw["context"], text = stack.enter_context(read_stdin(sys.stdin.buffer, kw["dockerfile"]))
    if text is not None:
        kw["stdin_dockerfile"] = text
    elif kw["dockerfile"]:  # with an archive on stdin, -f names a file inside it (as in docker)
        kw["dockerfile"] = inner_path(kw["context"], kw["dockerfile"])


def git_context(stack: contextlib.ExitStack, kw: dict[str, Any]) -> None:
    """`build URL#REF:DIR`: the repository checked out, for as long as `stack`."""
    from layerbuild.context.gitref import parse_git_url
    from layerbuild.engine.gitsource import git_context as checkout
    from layerbuild.engine.stdincontext import inner_path

    kw["context"] = stack.enter_context(checkout(parse_git_url(kw["context"]))).root
    if kw["dockerfile"] and kw["dockerfile"] != "-":  # -f names a file of the repository
        kw["dockerfile"] = inner_path(kw["context"], kw["dockerfile"])
