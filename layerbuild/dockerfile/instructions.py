"""Typed Dockerfile instructions: one frozen dataclass per keyword of Docker's reference.

Each instruction has `span` (lines it covers) and `original` (the text as written, continuation
lines joined, heredoc bodies excluded) as its first two fields; the rest mirror what BuildKit's
`instructions/commands.go` keeps, with values still unexpanded (`expand.expand` does that per
stage, because ARG/ENV values are only known while walking a stage).

`describe(instr)` gives the canonical text used for image history and cache keys: flags in a fixed
order, exec forms as JSON, and heredoc bodies appended so that changing a body changes the key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from layerbuild.dockerfile.durations import format_duration
from layerbuild.dockerfile.source import Span


@dataclass(frozen=True)
class Heredoc:
    """A `<<NAME` document. `content` has a trailing newline per line, tabs stripped for <<-."""

    name: str
    content: str
    expand: bool  # False when the name was quoted (<<"EOF", <<'EOF')
    chomp: bool  # True for <<-NAME


@dataclass(frozen=True)
class _Instruction:
    """What every instruction has: where it is in the Dockerfile and its text as written."""

    span: Span
    original: str

    keyword: ClassVar[str] = ""


@dataclass(frozen=True)
class From(_Instruction):
    """`FROM [--platform=P] IMAGE [AS NAME]`: a stage begins."""

    image: str
    stage_name: str | None
    platform: str | None

    keyword: ClassVar[str] = "FROM"


@dataclass(frozen=True)
class Run(_Instruction):
    """`RUN`: a command run in the stage's filesystem, its changes kept as a layer."""

    # shell form: command == (script_text,) with heredoc markers left in; exec form: the array
    command: tuple[str, ...]
    shell_form: bool
    heredocs: tuple[Heredoc, ...]
    mounts: tuple[str, ...]
    network: str | None
    security: str | None

    keyword: ClassVar[str] = "RUN"


@dataclass(frozen=True)
class Cmd(_Instruction):
    """`CMD`: the image's default command or the entrypoint's default arguments."""

    command: tuple[str, ...]
    shell_form: bool

    keyword: ClassVar[str] = "CMD"


@dataclass(frozen=True)
class Entrypoint(_Instruction):
    """`ENTRYPOINT`: the command the image always runs."""

    command: tuple[str, ...]
    shell_form: bool

    keyword: ClassVar[str] = "ENTRYPOINT"


@dataclass(frozen=True)
class Copy(_Instruction):
    """`COPY`: files from the context, a stage or an image, into the stage."""

    sources: tuple[str, ...]  # a heredoc source appears as "<<NAME"
    dest: str
    from_stage: str | None
    chown: str | None
    chmod: str | None
    link: bool
    excludes: tuple[str, ...]
    parents: bool
    heredocs: tuple[Heredoc, ...]

    keyword: ClassVar[str] = "COPY"


@dataclass(frozen=True)
class Add(_Instruction):
    """`ADD`: as COPY, plus URLs, git sources and local archives unpacked."""

    # the fields of Copy, repeated rather than inherited so that isinstance(x, Copy) is never
    # true for an ADD (the two differ in URL, archive and git handling)
    sources: tuple[str, ...]
    dest: str
    from_stage: str | None
    chown: str | None
    chmod: str | None
    link: bool
    excludes: tuple[str, ...]
    parents: bool
    heredocs: tuple[Heredoc, ...]
    checksum: str | None
    keep_git_dir: bool
    unpack: bool | None  # None: Docker's default (unpack local archives, not remote ones)

    keyword: ClassVar[str] = "ADD"


@dataclass(frozen=True)
class Env(_Instruction):
    """`ENV`: variables set in the config and seen by the steps after it."""

    pairs: tuple[tuple[str, str], ...]

    keyword: ClassVar[str] = "ENV"


@dataclass(frozen=True)
class Arg(_Instruction):
    """`ARG`: a build argument, with its default when given."""

    pairs: tuple[tuple[str, str | None], ...]  # None: declared without a default

    keyword: ClassVar[str] = "ARG"


@dataclass(frozen=True)
class Workdir(_Instruction):
    """`WORKDIR`: the directory later steps and the container start in."""

    path: str

    keyword: ClassVar[str] = "WORKDIR"


@dataclass(frozen=True)
class User(_Instruction):
    """`USER`: the user (and group) later RUNs and the container run as."""

    user: str

    keyword: ClassVar[str] = "USER"


@dataclass(frozen=True)
class Label(_Instruction):
    """`LABEL`: key-value pairs in the image config."""

    pairs: tuple[tuple[str, str], ...]

    keyword: ClassVar[str] = "LABEL"


@dataclass(frozen=True)
class Expose(_Instruction):
    """`EXPOSE`: ports the image says it listens on."""

    ports: tuple[str, ...]

    keyword: ClassVar[str] = "EXPOSE"


@dataclass(frozen=True)
class Volume(_Instruction):
    """`VOLUME`: paths the image marks as volumes."""

    paths: tuple[str, ...]

    keyword: ClassVar[str] = "VOLUME"


@dataclass(frozen=True)
class StopSignal(_Instruction):
    """`STOPSIGNAL`: the signal that stops the container."""

    signal: str

    keyword: ClassVar[str] = "STOPSIGNAL"


@dataclass(frozen=True)
class Healthcheck(_Instruction):
    """`HEALTHCHECK`: how a runtime checks the container, or NONE."""

    test: tuple[str, ...] | None  # None: HEALTHCHECK NONE; else ("CMD", ...) / ("CMD-SHELL", s)
    interval_ns: int  # 0: not set (the runtime default applies)
    timeout_ns: int
    start_period_ns: int
    start_interval_ns: int
    retries: int

    keyword: ClassVar[str] = "HEALTHCHECK"


@dataclass(frozen=True)
class Shell(_Instruction):
    """`SHELL`: the shell later shell-form instructions run in."""

    command: tuple[str, ...]

    keyword: ClassVar[str] = "SHELL"


@dataclass(frozen=True)
class Onbuild(_Instruction):
    """`ONBUILD`: an instruction kept in the config, run by builds FROM this image."""

    trigger: str  # the trigger instruction text, e.g. "RUN make"

    keyword: ClassVar[str] = "ONBUILD"


@dataclass(frozen=True)
class Maintainer(_Instruction):
    """`MAINTAINER` (deprecated): kept as the config's author."""

    name: str

    keyword: ClassVar[str] = "MAINTAINER"


Instruction = (
    From
    | Run
    | Cmd
    | Entrypoint
    | Copy
    | Add
    | Env
    | Arg
    | Workdir
    | User
    | Label
    | Expose
    | Volume
    | StopSignal
    | Healthcheck
    | Shell
    | Onbuild
    | Maintainer
)


def describe(instr: Instruction) -> str:
    """Canonical text of `instr` for image history and cache keys.

    Flags come in a fixed order whatever order they were written in, exec forms are JSON, and
    each heredoc body follows on the next lines ended by its name, as BuildKit records them.
    """
    head = " ".join([instr.keyword, *_flag_words(instr), _body(instr)]).rstrip()
    heredocs = getattr(instr, "heredocs", ())
    return head + "".join(f"\n{doc.content}{doc.name}" for doc in heredocs)


def _flag_words(instr: Instruction) -> list[str]:
    match instr:
        case From(platform=str(platform)):
            return [f"--platform={platform}"]
        case Run():
            words = [f"--mount={m}" for m in instr.mounts]
            words += [f"--network={instr.network}"] if instr.network else []
            return words + ([f"--security={instr.security}"] if instr.security else [])
        case Copy() | Add():
            return _copy_flags(instr)
        case Healthcheck(test=tuple()):
            return _health_flags(instr)
    return []


def _copy_flags(instr: Copy | Add) -> list[str]:
    words = [f"--from={instr.from_stage}"] if instr.from_stage is not None else []
    words += [f"--chown={instr.chown}"] if instr.chown is not None else []
    words += [f"--chmod={instr.chmod}"] if instr.chmod is not None else []
    words += ["--link"] if instr.link else []
    words += ["--parents"] if instr.parents else []
    words += [f"--exclude={e}" for e in instr.excludes]
    if isinstance(instr, Add):
        words += [f"--checksum={instr.checksum}"] if instr.checksum is not None else []
        words += ["--keep-git-dir"] if instr.keep_git_dir else []
        words += [f"--unpack={str(instr.unpack).lower()}"] if instr.unpack is not None else []
    return words


def _health_flags(instr: Healthcheck) -> list[str]:
    durations = (("interval", instr.interval_ns), ("timeout", instr.timeout_ns),
                 ("start-period", instr.start_period_ns),
                 ("start-interval", instr.start_interval_ns))
    words = [f"--{name}={format_duration(ns)}" for name, ns in durations if ns]
    return words + ([f"--retries={instr.retries}"] if instr.retries else [])


def _body(instr: Instruction) -> str:
    match instr:
        case From():
            return instr.image + (f" AS {instr.stage_name}" if instr.stage_name else "")
        case Run() | Cmd() | Entrypoint():
            return instr.command[0] if instr.shell_form else _json(instr.command)
        case Copy() | Add():
            return _words([*instr.sources, instr.dest])
        case Env() | Label():
            return " ".join(f"{k}={_value(v)}" for k, v in instr.pairs)
        case Arg():
            return " ".join(k if v is None else f"{k}={v}" for k, v in instr.pairs)
        case Expose():
            return " ".join(instr.ports)
        case Volume():
            return _words(instr.paths)
        case Shell():
            return _json(instr.command)
        case Healthcheck(test=None):
            return "NONE"
        case Healthcheck(test=(kind, *rest)):
            return "CMD " + (rest[0] if kind == "CMD-SHELL" else _json(rest))
        case Workdir() | User() | StopSignal() | Maintainer() | Onbuild():
            return _single_value(instr)
    raise TypeError(f"not an instruction: {instr!r}")


def _single_value(instr: Workdir | User | StopSignal | Maintainer | Onbuild) -> str:
    match instr:
        case Workdir():
            return instr.path
        case User():
            return instr.user
        case StopSignal():
            return instr.signal
        case Maintainer():
            return instr.name
    return instr.trigger


def _value(value: str) -> str:
    # a legacy `ENV k a b` value, or an expanded one, may hold blanks: quote it so that the
    # k=v list stays readable and unambiguous
    quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
    if quoted or not any(ch.isspace() for ch in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _json(items: Sequence[str]) -> str:
    return json.dumps(list(items), ensure_ascii=False)


def _words(items: Sequence[str]) -> str:
    # the JSON form keeps words with blanks unambiguous
    if any(not item or any(ch.isspace() for ch in item) for item in items):
        return _json(items)
    return " ".join(items)
