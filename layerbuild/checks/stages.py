"""The rules BuildKit checks while it dispatches a stage's instructions, so only for the stages
a build reaches (all of them for `build --check`): CMD/ENTRYPOINT in shell form, repeated
CMD/ENTRYPOINT/HEALTHCHECK, a first relative WORKDIR, `ENV k v`, secrets in ARG/ENV names,
EXPOSE formats, undefined variables, COPY/ADD of files .dockerignore excludes. A stage built
FROM another inherits its SHELL, WORKDIR and variables, as in BuildKit."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from layerbuild.checks.ignored import ignored_sources
from layerbuild.checks.rules import Finding
from layerbuild.checks.variables import UndefinedVars
from layerbuild.context.ignore import IgnoreRules
from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.lexer import split_words
from layerbuild.dockerfile.parser import Dockerfile, Stage
from layerbuild.dockerfile.shell import ShellLexer
from layerbuild.dockerfile.source import Span
from layerbuild.errors import ShellExpansionError

_SECRET = re.compile(
    r"(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)"
    r"(?:_|$)", re.IGNORECASE)
_NOT_SECRET = re.compile(r"(?:_|^)(?:public|file|version)(?:_|$)", re.IGNORECASE)
_ONCE = (ins.Cmd, ins.Entrypoint, ins.Healthcheck)
_I = TypeVar("_I", ins.Copy, ins.Add, ins.Workdir)

# the environment of an image by its name; None when it is not known (then a stage on that
# image is not checked for undefined variables rather than warned about its image's ENV)
ImageEnv = Callable[[str], Mapping[str, str] | None]


@dataclass
class _StageState:
    """What the stage checks remember of the stage they are in."""

    shell_set: bool = False
    workdir_set: bool = False
    variables: UndefinedVars | None = None
    last: dict[str, Span] = field(default_factory=dict)


def stage_findings(
    dockerfile: Dockerfile,
    reachable: frozenset[int],
    build_args: Mapping[str, str],
    global_args: Mapping[str, str | None],
    image_env: ImageEnv,
    ignore: IgnoreRules | None = None,
) -> Iterator[Finding]:
    done: dict[int, _StageState] = {}
    env = {k: v for k, v in global_args.items() if v is not None}
    lexer = ShellLexer(escape=dockerfile.escape)
    for stage in dockerfile.stages:
        try:
            image = lexer.process(stage.from_.image, env).result
        except ShellExpansionError:
            image = ""  # the build reports it
        found = dockerfile.stage(image) if image and not image.isdigit() else None
        base = done.get(found.index) if found is not None else None
        if base is not None:
            variables = base.variables.child() if base.variables else None
        else:
            known = {} if image == "scratch" else image_env(image) if image else None
            variables = None if known is None else UndefinedVars(
                dockerfile, build_args, global_args, known)
        state = _StageState(
            shell_set=base.shell_set if base else False,
            workdir_set=base.workdir_set if base else False,
            variables=variables,
        )
        findings = list(_walk(stage, state, dockerfile.escape, ignore))
        done[stage.index] = state
        if stage.index in reachable:
            yield from findings


def _walk(
    stage: Stage, state: _StageState, escape: str, ignore: IgnoreRules | None
) -> Iterator[Finding]:
    for instr in stage.instructions:
        scope = instr.span.start_line
        keyword = instr.original.split(None, 1)[0]
        if state.variables is not None:
            yield from state.variables.visit(instr)
        if isinstance(instr, _ONCE):
            if instr.keyword in state.last:
                yield Finding("MultipleInstructionsDisallowed",
                              f"Multiple {keyword} instructions should not be used in the same "
                              "stage because only the last one will be used",
                              state.last[instr.keyword], scope)
            state.last[instr.keyword] = instr.span
        match instr:
            case ins.Cmd() | ins.Entrypoint() if instr.shell_form and not state.shell_set:
                yield Finding("JSONArgsRecommended", f"JSON arguments recommended for {keyword} "
                              "to prevent unintended behavior related to OS signals",
                              instr.span, scope)
            case ins.Shell():
                state.shell_set = True
            case ins.Workdir():
                path = _expanded(instr, state).path
                if not state.workdir_set and not path.startswith("/"):
                    yield Finding("WorkdirRelativePath", f'Relative workdir "{path}" can have '
                                  "unexpected results if the base image changes", instr.span,
                                  scope)
                state.workdir_set = True
            case ins.Env() | ins.Label():
                yield from _legacy(instr, keyword, escape)
                if isinstance(instr, ins.Env):
                    yield from _secrets("ENV", instr.pairs, instr.span)
            case ins.Arg():
                yield from _secrets("ARG", instr.pairs, instr.span)
            case ins.Expose():
                yield from _expose(instr, state.variables)
            case ins.Copy():
                yield from ignored_sources(instr, _expanded(instr, state), ignore)
            case ins.Add():
                yield from ignored_sources(instr, _expanded(instr, state), ignore)


def _expanded(instr: _I, state: _StageState) -> _I:
    return state.variables.expanded(instr) if state.variables else instr


def _legacy(instr: ins.Env | ins.Label, keyword: str, escape: str) -> Iterator[Finding]:
    args = instr.original.split(None, 1)[1] if len(instr.original.split(None, 1)) > 1 else ""
    words = split_words(args, escape)
    if words and "=" not in words[0]:
        yield Finding("LegacyKeyValueFormat", f'"{keyword} key=value" should be used instead of '
                      f'legacy "{keyword} key value" format', instr.span, instr.span.start_line)


def _secrets(
    kind: str, pairs: tuple[tuple[str, str | None], ...] | tuple[tuple[str, str], ...], span: Span
) -> Iterator[Finding]:
    for key, _ in pairs:
        if _SECRET.search(key) and not _NOT_SECRET.search(key):
            yield Finding("SecretsUsedInArgOrEnv", "Do not use ARG or ENV instructions for "
                          f'sensitive data ({kind} "{key}")', span, span.start_line)


def _expose(instr: ins.Expose, variables: UndefinedVars | None) -> Iterator[Finding]:
    ports = variables.expanded(instr).ports if variables else instr.ports
    for port in ports:
        parts = port.split(":")
        host_ip = ":".join(parts[:-2])
        host_port = parts[-2] if len(parts) > 1 else ""
        number, _, proto = parts[-1].partition("/")
        if not number:
            continue  # BuildKit fails the port before it checks it
        scope = instr.span.start_line
        if proto != proto.lower():
            yield Finding("ExposeProtoCasing", f"Defined protocol '{port}' in EXPOSE instruction "
                          "should be lowercase", instr.span, scope)
        if host_ip or host_port:
            yield Finding("ExposeInvalidFormat", "EXPOSE instruction should not define an IP "
                          f"address or host-port mapping, found '{port}'", instr.span, scope)
