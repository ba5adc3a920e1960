"""Apply Docker's variable expansion to exactly the instruction fields Docker expands.

BuildKit expands a word with the stage's environment (ARGs in scope, then ENV) just before it
dispatches the instruction (`dockerfile2llb/convert.go`, `dispatch`), so expansion lives here, per
instruction, and the caller (the executor walking a stage) supplies the environment from
`scope.VarScope.expansion_env()`. The fields, from BuildKit's `instructions/commands.go` `Expand`
methods and `dispatchExpose`:

- FROM: image, --platform and the stage name (with the *global* ARGs only);
- COPY/ADD: sources, destination, --from, --chown, --chmod, --exclude, ADD --checksum; heredoc
  sources are not words and stay as written (`expand_heredoc` handles their bodies);
- ENV, LABEL: keys and values; ARG: names and defaults;
- EXPOSE: each port, split into words after expansion (`EXPOSE $PORTS` may give several);
- STOPSIGNAL, USER, VOLUME, WORKDIR: their value(s).

RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD and MAINTAINER are returned unchanged: their
text is for the container's shell (RUN's shell does its own expansion) or not expanded at all.
All values of one instruction see the same environment, so `ENV A=1 B=$A` gives B the *previous*
A, as in Docker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from layerbuild.dockerfile.instructions import (
    Add,
    Arg,
    Copy,
    Env,
    Expose,
    From,
    Heredoc,
    Instruction,
    Label,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from layerbuild.dockerfile.shell import ShellLexer, expand_word, expand_words
from layerbuild.dockerfile.source import DockerfileSource
from layerbuild.errors import DockerfileError, ShellExpansionError

_CopyLike = TypeVar("_CopyLike", Copy, Add)


@dataclass(frozen=True)
class _Words:
    """expand_word / expand_words bound to one environment and escape character."""

    env: Mapping[str, str]
    escape: str

    def one(self, word: str) -> str:
        return expand_word(word, self.env, escape=self.escape)

    def maybe(self, word: str | None) -> str | None:
        return None if word is None else self.one(word)

    def each(self, words: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self.one(w) for w in words)

    def split(self, words: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(part for w in words for part in expand_words(w, self.env, escape=self.escape))

    def pairs(self, pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        return tuple((self.one(k), self.one(v)) for k, v in pairs)


def expand(
    instr: Instruction,
    env: Mapping[str, str],
    *,
    escape: str = "\\",
    source: DockerfileSource | None = None,
) -> Instruction:
    """A copy of `instr` with Docker's expansion applied; DockerfileError points at its line.

    `source`, when given, names the file and quotes the line in the error; without it the
    instruction's own text is quoted.
    """
    words = _Words(env, escape)
    try:
        return _expand(instr, words)
    except ShellExpansionError as exc:
        raise expansion_error(instr, exc, source) from None


def _expand(instr: Instruction, w: _Words) -> Instruction:
    match instr:
        case From():
            return replace(
                instr,
                image=w.one(instr.image),
                stage_name=w.maybe(instr.stage_name),
                platform=w.maybe(instr.platform),
            )
        case Copy():
            return replace(_expand_copy_like(instr, w), from_stage=w.maybe(instr.from_stage))
        case Add():
            return replace(_expand_copy_like(instr, w), checksum=w.maybe(instr.checksum))
        case Env() | Label():
            return replace(instr, pairs=w.pairs(instr.pairs))
        case Arg():
            return replace(instr, pairs=tuple((w.one(k), w.maybe(v)) for k, v in instr.pairs))
        case Expose():
            return replace(instr, ports=w.split(instr.ports))
        case Volume():
            return replace(instr, paths=w.each(instr.paths))
        case Workdir():
            return replace(instr, path=w.one(instr.path))
        case User():
            return replace(instr, user=w.one(instr.user))
        case StopSignal():
            return replace(instr, signal=w.one(instr.signal))
    # RUN CMD ENTRYPOINT SHELL HEALTHCHECK ONBUILD MAINTAINER: not expanded by Docker
    return instr


def _expand_copy_like(instr: _CopyLike, w: _Words) -> _CopyLike:
    heredoc_sources = {f"<<{doc.name}" for doc in instr.heredocs}
    for doc in instr.heredocs:
        # the body is written later (engine/copyop.py); a bad ${...} in it must fail here, where
        # the error can still name the file and line, as BuildKit fails it at dispatch
        try:
            expand_heredoc(doc, w.env)
        except ShellExpansionError as exc:
            raise ShellExpansionError(f"<<{doc.name}", f"in its body: {exc.reason}",
                                      hint=exc.hint) from None
    sources = tuple(s if s in heredoc_sources else w.one(s) for s in instr.sources)
    return replace(
        instr,
        sources=sources,
        dest=w.one(instr.dest),
        chown=w.maybe(instr.chown),
        chmod=w.maybe(instr.chmod),
        excludes=w.each(instr.excludes),
    )


def expand_heredoc(heredoc: Heredoc, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """The body of a COPY/ADD heredoc as the file should contain it.

    A quoted name (`<<"EOF"`) keeps the body verbatim. Otherwise variables expand but quotes are
    ordinary text (BuildKit's ExpandRaw with SkipProcessQuotes, moby/buildkit#2439), and the escape
    character still escapes `$`. BuildKit always uses a backslash here, whatever the `escape=`
    directive says, hence the default. Raises ShellExpansionError (the caller knows the line).
    """
    if not heredoc.expand:
        return heredoc.content
    lexer = ShellLexer(escape=escape, skip_process_quotes=True)
    return lexer.process(heredoc.content, env).result


def expansion_error(
    instr: Instruction, exc: ShellExpansionError, source: DockerfileSource | None = None
) -> DockerfileError:
    """The DockerfileError for a failed expansion in `instr` (file and line from `source`)."""
    message = f"{instr.keyword}: {exc.message}"
    if source is not None:
        return source.error(message, instr.span, hint=exc.hint)
    return DockerfileError(
        message,
        line=instr.span.start_line,
        source_line=instr.original,
        hint=exc.hint,
    )
