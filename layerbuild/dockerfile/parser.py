"""Raw instructions -> typed instructions -> stages: `parse_dockerfile(source) -> Dockerfile`.

Lexing is lexer.py's and typing one instruction is builders.py's (one builder per keyword);
here the typed instructions are grouped into the global ARGs and the stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from layerbuild.dockerfile.builders import build_instruction
from layerbuild.dockerfile.instructions import Arg, From, Instruction
from layerbuild.dockerfile.lexer import lex, split_command
from layerbuild.dockerfile.source import DockerfileSource, Span


@dataclass(frozen=True)
class Stage:
    """One `FROM` and the instructions after it, up to the next `FROM`."""

    index: int
    name: str | None
    from_: From
    instructions: tuple[Instruction, ...]


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile: the ARGs before the first FROM and the stages."""

    source: DockerfileSource
    directives: dict[str, str] = field(hash=False)  # only those present: syntax, escape, check
    global_args: tuple[Arg, ...]
    stages: tuple[Stage, ...]

    @property
    def escape(self) -> str:
        return self.directives.get("escape", "\\")

    def stage(self, name_or_index: str | int) -> Stage | None:
        """The stage named so (case-insensitive), or at that index ("0", 0); None if absent."""
        if isinstance(name_or_index, int) or name_or_index.isdigit():
            index = int(name_or_index)
            return self.stages[index] if 0 <= index < len(self.stages) else None
        wanted = name_or_index.lower()
        return next((s for s in self.stages if s.name == wanted), None)


def parse_dockerfile(source: DockerfileSource, *, unique_stage_names: bool = True) -> Dockerfile:
    """Lex, type and group into stages; DockerfileError (with file and line) on any mistake.

    Two stages of one name are a mistake for a build (which one would `--from` mean?); the
    build checks (`build --check`) parse with `unique_stage_names=False` and report them as
    BuildKit's DuplicateStageName instead."""
    lexed = lex(source)
    if not lexed.instructions:
        raise source.error("the Dockerfile has no instructions", None,
                           hint="start it with FROM <image>")
    global_args: list[Arg] = []
    stages: list[tuple[From, list[Instruction]]] = []
    names: dict[str, Span] = {}
    for raw in lexed.instructions:
        instr = build_instruction(raw, source, lexed.escape)
        if isinstance(instr, From):
            if instr.stage_name is not None:
                if unique_stage_names and instr.stage_name in names:
                    raise source.error(
                        f"duplicate stage name {instr.stage_name!r}", instr.span,
                        hint=f"line {names[instr.stage_name].start_line} already uses it; "
                        "give each stage a unique name")
                names.setdefault(instr.stage_name, instr.span)
            stages.append((instr, []))
        elif stages:
            stages[-1][1].append(instr)
        elif isinstance(instr, Arg):
            global_args.append(instr)
        else:
            raise source.error(
                f"{instr.keyword} comes before the first FROM", instr.span,
                hint="only ARG may come before FROM; start the stage with FROM <image>")
    if not stages:
        raise source.error("the Dockerfile has no FROM instruction", global_args[-1].span,
                           hint="add FROM <image> after the global ARGs")
    return Dockerfile(
        source, dict(lexed.directives), tuple(global_args),
        tuple(Stage(i, f.stage_name, f, tuple(body)) for i, (f, body) in enumerate(stages)))


def parse_trigger(text: str, span: Span, source: DockerfileSource, escape: str) -> Instruction:
    """An ONBUILD trigger of a base image as the instruction it names (reported at `span`)."""
    return build_instruction(split_command(text, span), source, escape)
