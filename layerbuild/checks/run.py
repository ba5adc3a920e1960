"""`run_checks`: BuildKit's Dockerfile checks over a parsed Dockerfile, filtered by the
`check=` options (file-wide and per instruction), sorted by line.

Which stages: the rules BuildKit applies while parsing or listing stages look at every stage;
those it applies while dispatching instructions only at the stages the build reaches
(`reachable`; None for all, as `build --check` does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from layerbuild.checks.basestages import ImagePlatform, base_platforms, duplicate_names
from layerbuild.checks.comments import comments_above
from layerbuild.checks.fromline import from_findings
from layerbuild.checks.options import (
    CHECK_BUILD_ARG,
    CheckOptions,
    options_from_comments,
    parse_check_options,
)
from layerbuild.checks.rules import CheckWarning, Finding
from layerbuild.checks.stages import ImageEnv, stage_findings
from layerbuild.checks.syntax import syntax_findings
from layerbuild.context.ignore import IgnoreRules
from layerbuild.dockerfile.lexer import lex
from layerbuild.dockerfile.parser import Dockerfile
from layerbuild.dockerfile.scope import global_arg_values
from layerbuild.errors import DockerfileError
from layerbuild.image.descriptor import Platform


def check_options(dockerfile: Dockerfile, build_args: Mapping[str, str]) -> CheckOptions:
    """The file-wide options: the BUILDKIT_DOCKERFILE_CHECK build arg, else the directive."""
    from_arg = CHECK_BUILD_ARG in build_args
    text = build_args[CHECK_BUILD_ARG] if from_arg else dockerfile.directives.get("check", "")
    try:
        return parse_check_options(text)
    except ValueError as exc:
        where = f"--build-arg {CHECK_BUILD_ARG}" if from_arg else "the '# check=' directive"
        raise DockerfileError(
            f"{exc} in {where}", file=dockerfile.source.name,
            hint="write skip=RULE,RULE|all and/or error=true|false, separated by ;") from None


def run_checks(
    dockerfile: Dockerfile,
    build_args: Mapping[str, str],
    *,
    platform: Platform | None = None,
    build_platform: Platform | None = None,
    reachable: Iterable[int] | None = None,
    image_env: ImageEnv | None = None,
    ignore: IgnoreRules | None = None,
    image_platform: ImagePlatform | None = None,
) -> tuple[CheckWarning, ...]:
    """The warnings for `dockerfile`; DockerfileError for malformed check options.

    `image_env` gives a base image's ENV (None: unknown); `ignore`: the context's
    .dockerignore rules (None: no CopyIgnoredFile check); `image_platform` a base image's
    platform (None: unknown; no InvalidBaseImagePlatform check)."""
    options = check_options(dockerfile, build_args)
    if options.skip_all:
        return ()
    raws = lex(dockerfile.source).instructions
    try:
        global_args = global_arg_values(dockerfile, build_args, platform,
                                        build_platform=build_platform)
    except DockerfileError:
        global_args = {}
    stages = frozenset(s.index for s in dockerfile.stages) if reachable is None else (
        frozenset(reachable))
    findings = [
        *syntax_findings(raws),
        *duplicate_names(dockerfile),
        *from_findings(dockerfile, build_args, platform, build_platform),
        *base_platforms(dockerfile, stages, global_args, platform,
                        image_platform or (lambda _image: None)),
        *stage_findings(dockerfile, stages, build_args, global_args,
                        image_env or (lambda _image: None), ignore),
    ]
    comments = comments_above(dockerfile.source, raws)
    kept = [f for f in findings if not _skipped(f, options, comments)]
    kept.sort(key=lambda f: f.span.start_line)
    return tuple(f.warning() for f in kept)


def _skipped(finding: Finding, options: CheckOptions,
             comments: Mapping[int, tuple[str, ...]]) -> bool:
    if finding.scope is not None:
        local = options_from_comments(comments.get(finding.scope, ()))
        if local is not None:
            options = options.merged(local)
    return options.skips(finding.rule)
