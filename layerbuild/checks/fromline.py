"""The rules about FROM lines, for every stage (BuildKit checks them while it lists the stages,
reachable or not): undeclared ARGs in the image or --platform, an image name that the ARG
defaults alone leave invalid, `--platform=$TARGETPLATFORM`, and a constant --platform."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from layerbuild.checks.rules import Finding
from layerbuild.checks.suggest import closest
from layerbuild.dockerfile.instructions import From
from layerbuild.dockerfile.parser import Dockerfile
from layerbuild.dockerfile.scope import global_arg_values
from layerbuild.dockerfile.shell import Expansion, ShellLexer
from layerbuild.errors import DockerfileError, InvalidReference, ShellExpansionError
from layerbuild.image.descriptor import Platform
from layerbuild.registry.reference import parse_reference


def from_findings(
    dockerfile: Dockerfile,
    build_args: Mapping[str, str],
    platform: Platform | None,
    build_platform: Platform | None,
) -> Iterator[Finding]:
    try:
        values = global_arg_values(dockerfile, build_args, platform, build_platform=build_platform)
    except DockerfileError:
        return  # a broken ARG default: the build reports it
    env = {k: v for k, v in values.items() if v is not None}
    declared = set(values)
    lexer = ShellLexer(escape=dockerfile.escape)
    for stage in dockerfile.stages:
        instr = stage.from_
        yield from _undeclared(lexer, instr.image, env, declared, instr)
        if instr.platform is not None:
            yield from _undeclared(lexer, instr.platform, env, declared, instr)
            yield from _platform(lexer, instr, env)
    yield from _invalid_defaults(dockerfile, platform, build_platform, lexer)


def _expand(lexer: ShellLexer, word: str, env: Mapping[str, str]) -> Expansion | None:
    try:
        return lexer.process(word, env)
    except ShellExpansionError:
        return None  # the build reports it


def _undeclared(
    lexer: ShellLexer, word: str, env: Mapping[str, str], declared: set[str], instr: From
) -> Iterator[Finding]:
    expansion = _expand(lexer, word, env)
    for name in sorted(expansion.unmatched if expansion else ()):
        if name in declared:
            continue
        hint = closest(name, declared)
        message = f"FROM argument '{name}' is not declared"
        yield Finding("UndefinedArgInFrom", message + (f" (did you mean {hint}?)" if hint else ""),
                      instr.span, instr.span.start_line)


def _platform(lexer: ShellLexer, instr: From, env: Mapping[str, str]) -> Iterator[Finding]:
    assert instr.platform is not None
    expansion = _expand(lexer, instr.platform, env)
    if expansion is None:
        return
    if expansion.matched == {"TARGETPLATFORM"} and not expansion.unmatched:
        if expansion.result == env.get("TARGETPLATFORM"):
            yield Finding("RedundantTargetPlatform",
                          f"Setting platform to predefined {instr.platform} in FROM is redundant "
                          "as this is the default behavior", instr.span, instr.span.start_line)
        return
    if expansion.matched or expansion.unmatched:
        return  # a variable: not a constant
    try:
        constant = Platform.parse(expansion.result)
    except ValueError:
        return  # the build reports it
    name = instr.stage_name or ""
    if constant.os in name or constant.architecture in name:
        return  # a stage named for its platform (`AS build_amd64`) means it on purpose
    yield Finding("FromPlatformFlagConstDisallowed",
                  f'FROM --platform flag should not use constant value "{expansion.result}"',
                  instr.span, instr.span.start_line)


def _invalid_defaults(
    dockerfile: Dockerfile,
    platform: Platform | None,
    build_platform: Platform | None,
    lexer: ShellLexer,
) -> Iterator[Finding]:
    """InvalidDefaultArgInFrom: the base names as they would be without any --build-arg."""
    try:
        values = global_arg_values(dockerfile, {}, platform, build_platform=build_platform)
    except DockerfileError:
        return
    env = {k: v for k, v in values.items() if v is not None}
    for stage in dockerfile.stages:
        expansion = _expand(lexer, stage.from_.image, env)
        if expansion is None:
            return
        try:
            parse_reference(expansion.result)
        except InvalidReference:
            yield Finding("InvalidDefaultArgInFrom", f"Default value for ARG {stage.from_.image} "
                          "results in empty or invalid base image name", stage.from_.span, None)
