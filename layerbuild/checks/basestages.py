"""The rules about the stages' bases, checked against what names and holds them:
DuplicateStageName (every stage, as BuildKit lists them) and InvalidBaseImagePlatform (the
stages a build reaches, once their base image's platform is known)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from layerbuild.checks.rules import Finding
from layerbuild.dockerfile.parser import Dockerfile
from layerbuild.dockerfile.shell import ShellLexer
from layerbuild.errors import ShellExpansionError
from layerbuild.image.descriptor import Platform

# the platform of an image by its name; None when it is not known (not in the local store):
# such a stage is not checked rather than guessed about
ImagePlatform = Callable[[str], Platform | None]


def duplicate_names(dockerfile: Dockerfile) -> Iterator[Finding]:
    """Each stage that reuses an earlier stage's name (names are case-insensitive)."""
    seen: set[str] = set()
    for stage in dockerfile.stages:
        name = stage.from_.stage_name
        if name is None:
            continue
        if name in seen:
            span = stage.from_.span
            yield Finding("DuplicateStageName",
                          f'Duplicate stage name "{name}", stage names should be unique',
                          span, span.start_line)
        seen.add(name)


def base_platforms(
    dockerfile: Dockerfile,
    reachable: frozenset[int],
    global_args: Mapping[str, str | None],
    platform: Platform | None,
    image_platform: ImagePlatform,
) -> Iterator[Finding]:
    """Each reachable stage whose base image is known to be of another platform than the one
    the stage builds for (its FROM --platform, else the target platform)."""
    env = {k: v for k, v in global_args.items() if v is not None}
    lexer = ShellLexer(escape=dockerfile.escape)
    for stage in dockerfile.stages:
        if stage.index not in reachable:
            continue
        image = _expand(lexer, stage.from_.image, env)
        if not image or image.lower() == "scratch" or _is_stage(dockerfile, image, stage.index):
            continue
        expected = _expected(lexer, stage.from_.platform, env, platform)
        actual = image_platform(image) if expected is not None else None
        if expected is None or actual is None or _matches(expected, actual):
            continue
        span = stage.from_.span
        yield Finding("InvalidBaseImagePlatform",
                      f'Base image {image} was pulled with platform "{_shown(actual)}", '
                      f'expected "{_shown(expected)}" for current build', span, span.start_line)


def _expand(lexer: ShellLexer, word: str, env: Mapping[str, str]) -> str | None:
    try:
        return lexer.process(word, env).result
    except ShellExpansionError:
        return None  # the build reports it


def _is_stage(dockerfile: Dockerfile, image: str, index: int) -> bool:
    found = dockerfile.stage(image) if not image.isdigit() else None
    return found is not None and found.index < index


def _expected(
    lexer: ShellLexer, flag: str | None, env: Mapping[str, str], platform: Platform | None
) -> Platform | None:
    if flag is None:
        return platform
    text = _expand(lexer, flag, env)
    try:
        return Platform.parse(text) if text else None
    except ValueError:
        return None  # the build reports it


def _matches(expected: Platform, actual: Platform) -> bool:
    """As containerd's matcher has it: os and architecture equal, and the variant too when both
    name one (arm64's v8 is its default, so none and v8 are the same)."""
    if (expected.os, expected.architecture) != (actual.os, actual.architecture):
        return False
    want, have = _variant(expected), _variant(actual)
    return want is None or have is None or want == have


def _shown(p: Platform) -> str:
    """As containerd normalizes it for display: arm64's default variant v8 left out."""
    if p.architecture == "arm64" and p.variant in ("8", "v8"):
        return f"{p.os}/{p.architecture}"
    return str(p)


def _variant(p: Platform) -> str | None:
    return p.variant or ("v8" if p.architecture == "arm64" else None)
