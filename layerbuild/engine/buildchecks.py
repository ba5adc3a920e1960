"""The build checks of a build: run layerbuild/checks over the Dockerfile before any step,
emit each warning as an event, and fail the build when the check options say `error=true`.

A base image's environment (what UndefinedVar needs to know which names it defines) is read
from the local store when the image is there: a manifest and a config, no layer. An image not
in the store is not pulled for a check; its stages are not checked for undefined variables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from layerbuild.checks.rules import CheckWarning
from layerbuild.checks.run import check_options, run_checks
from layerbuild.context.ignore import IgnoreRules
from layerbuild.dockerfile.parser import Dockerfile
from layerbuild.engine.events import BuildEvent, CheckWarned
from layerbuild.engine.options import BuildOptions
from layerbuild.engine.platforms import host_platform
from layerbuild.errors import CheckViolation, LayerbuildError
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Platform
from layerbuild.plan.graph import BuildGraph
from layerbuild.registry.reference import normalize_tag
from layerbuild.store import images
from layerbuild.store.layout import Store


def check_build(
    dockerfile: Dockerfile,
    options: BuildOptions,
    graph: BuildGraph,
    store: Store,
    ignore: IgnoreRules | None,
    emit: Callable[[BuildEvent], None],
) -> None:
    """The checks of a build of `graph`: emitted, and fatal with `error=true`."""
    reachable = [planned.index for planned in graph.stages]
    emit_checks(build_checks(dockerfile, options, reachable, store, ignore), dockerfile,
                options.build_args, emit)


def build_checks(
    dockerfile: Dockerfile,
    options: BuildOptions,
    reachable: Iterable[int] | None,
    store: Store | None,
    ignore: IgnoreRules | None,
) -> tuple[CheckWarning, ...]:
    """The warnings for a build of the `reachable` stages (None: all, as `build --check`)."""
    return run_checks(
        dockerfile, options.build_args, platform=options.platform,
        build_platform=host_platform(), reachable=reachable,
        image_env=_store_env(store, options.platform), ignore=ignore,
        image_platform=_store_platform(store, options.platform),
    )


def emit_checks(
    warnings: tuple[CheckWarning, ...],
    dockerfile: Dockerfile,
    build_args: Mapping[str, str],
    emit: Callable[[BuildEvent], None],
) -> None:
    """Emit each warning; CheckViolation when the options make warnings fatal."""
    for w in warnings:
        emit(CheckWarned(w.rule, w.message, w.line, w.url))
    if warnings and check_options(dockerfile, build_args).error:
        rules = ", ".join(sorted({w.rule for w in warnings}))
        raise CheckViolation(
            f"{dockerfile.source.name}: lint violation found for rules: {rules}",
            hint="fix what the warnings above point at, or skip a rule with "
            "'# check=skip=RULE' (docs/checks.md)")


def _store_env(
    store: Store | None, platform: Platform
) -> Callable[[str], Mapping[str, str] | None]:
    def image_env(ref: str) -> Mapping[str, str] | None:
        config = _stored_config(store, ref, platform)
        return config.config.env_dict() if config is not None else None

    return image_env


def _store_platform(store: Store | None, platform: Platform) -> Callable[[str], Platform | None]:
    """The platform of a base image in the store, as the build would pick it (an index's entry
    for `platform`, else the one image there is); None when it names none."""

    def image_platform(ref: str) -> Platform | None:
        config = _stored_config(store, ref, platform)
        if config is None or not (config.os and config.architecture):
            return None
        return Platform(os=config.os, architecture=config.architecture,
                        variant=config.variant or None)

    return image_platform


def _stored_config(store: Store | None, ref: str, platform: Platform) -> ImageConfig | None:
    if store is None:
        return None
    try:
        desc = images.resolve(store, ref if "@" in ref else normalize_tag(ref))
        return images.read_image(store, desc, platform)[2]
    except (LayerbuildError, OSError, ValueError):
        return None  # not in the store (or not readable): not checked
