"""One builder per Dockerfile keyword: a raw instruction -> the typed instruction it names.

Each builder checks arguments and flags the way BuildKit's `instructions/parse.go` does and
returns the dataclass from `instructions.py`. Values stay unexpanded (and keep their quotes where
Docker removes them during expansion: ENV, LABEL and ARG values, COPY/ADD words), so that
`expand.expand` sees exactly what BuildKit's shell lexer sees.

Apart from parser.py, which groups the typed instructions into stages: the keywords' argument
rules are many and independent of each other and of how a file is put together.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from layerbuild.dockerfile import flags as fl
from layerbuild.dockerfile.durations import parse_duration
from layerbuild.dockerfile.instructions import (
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from layerbuild.dockerfile.lexer import (
    RawInstruction,
    heredoc_marker,
    parse_json_array,
    split_command,
    split_whitespace,
    split_words,
)
from layerbuild.dockerfile.source import DockerfileSource
from layerbuild.errors import DockerfileError, NotStringArray

KEYWORDS = (
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
)
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")
_NETWORK_MODES = ("default", "none", "host")
_SECURITY_MODES = ("sandbox", "insecure")


@dataclass(frozen=True)
class _Req:
    """One raw instruction being typed, with what its errors need to point at it."""

    raw: RawInstruction
    source: DockerfileSource
    escape: str

    @property
    def keyword(self) -> str:
        return self.raw.keyword.upper()

    def error(self, message: str, hint: str | None = None) -> DockerfileError:
        return self.source.error(f"{self.keyword}: {message}", self.raw.span, hint=hint)

    def flags(self, *specs: fl.FlagSpec) -> fl.ParsedFlags:
        return fl.parse_flags(self.raw.flags, specs, keyword=self.keyword,
                              source=self.source, span=self.raw.span)

    def json_or_none(self) -> list[str] | None:
        try:
            return parse_json_array(self.raw.args)
        except NotStringArray as exc:
            raise self.error(str(exc), 'quote every item, e.g. ["echo", "1"]') from None

    def require_args(self, example: str) -> str:
        if not self.raw.args:
            raise self.error("missing arguments", f"write it as: {example}")
        return self.raw.args


def _from(req: _Req) -> From:
    flags = req.flags(fl.string("platform"))
    args = split_whitespace(req.require_args("FROM <image> [AS <name>]"))
    name: str | None = None
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise req.error(
                f"invalid stage name {args[2]!r}",
                "a stage name starts with a letter and has only letters, digits, '-', '_', '.'")
    elif len(args) != 1:
        raise req.error("expected FROM <image> or FROM <image> AS <name>",
                        "a stage name is introduced with AS, e.g. FROM alpine AS build")
    return From(req.raw.span, req.raw.original, args[0], name, flags.string("platform"))


def _command(req: _Req, example: str) -> tuple[tuple[str, ...], bool]:
    array = req.json_or_none()
    if array is not None:
        return tuple(array), False
    return (req.require_args(example),), True


def _run(req: _Req) -> Run:
    flags = req.flags(fl.strings("mount"), fl.string("network"), fl.string("security"))
    network, security = flags.string("network"), flags.string("security")
    if network is not None and network not in _NETWORK_MODES:
        raise req.error(f"unsupported --network={network}",
                        f"use one of: {', '.join(_NETWORK_MODES)}")
    if security is not None and security not in _SECURITY_MODES:
        raise req.error(f"unsupported --security={security}",
                        f"use one of: {', '.join(_SECURITY_MODES)}")
    command, shell_form = _command(req, "RUN <command>  or  RUN [\"executable\", \"arg\"]")
    if not shell_form and not command:
        raise req.error("the command is empty", "give at least the executable to run")
    return Run(req.raw.span, req.raw.original, command, shell_form, req.raw.heredocs,
               flags.strings("mount"), network, security)


def _cmd(req: _Req) -> Cmd:
    req.flags()
    command, shell_form = _command(req, 'CMD ["executable", "arg"]  or  CMD <command>')
    return Cmd(req.raw.span, req.raw.original, command, shell_form)


def _entrypoint(req: _Req) -> Entrypoint:
    req.flags()
    command, shell_form = _command(req, 'ENTRYPOINT ["executable", "arg"]')
    return Entrypoint(req.raw.span, req.raw.original, command, shell_form)


def _sources_dest(req: _Req) -> tuple[tuple[str, ...], str]:
    array = req.json_or_none()
    words = array if array is not None else split_whitespace(req.raw.args)
    if len(words) < 2:
        raise req.error(
            "needs at least one source and a destination",
            f"write it as: {req.keyword} <src>... <dest>  (e.g. {req.keyword} app.py /app/)")
    if array is None and heredoc_marker(words[-1]) is not None:
        raise req.error("a heredoc cannot be the destination",
                        f"put the heredoc before the destination: {req.keyword} <<EOF /path")
    sources = []
    for word in words[:-1]:
        doc = heredoc_marker(word) if array is None else None
        sources.append(f"<<{doc.name}" if doc else word)
    return tuple(sources), words[-1]


_COPY_FLAGS = (fl.string("chown"), fl.string("chmod"), fl.boolean("link"),
               fl.strings("exclude"))


def _copy(req: _Req) -> Copy:
    flags = req.flags(fl.string("from"), fl.boolean("parents"), *_COPY_FLAGS)
    sources, dest = _sources_dest(req)
    return Copy(req.raw.span, req.raw.original, sources, dest, flags.string("from"),
                flags.string("chown"), flags.string("chmod"), bool(flags.boolean("link")),
                flags.strings("exclude"), bool(flags.boolean("parents")), req.raw.heredocs)


def _add(req: _Req) -> Add:
    if any(f.startswith("--from") for f in req.raw.flags):
        raise req.error("--from is not a flag of ADD",
                        "use COPY --from=<stage> to copy from a stage")
    flags = req.flags(fl.string("checksum"), fl.boolean("keep-git-dir"), fl.boolean("unpack"),
                      *_COPY_FLAGS)
    sources, dest = _sources_dest(req)
    return Add(req.raw.span, req.raw.original, sources, dest, None, flags.string("chown"),
               flags.string("chmod"), bool(flags.boolean("link")), flags.strings("exclude"),
               False, req.raw.heredocs, flags.string("checksum"),
               bool(flags.boolean("keep-git-dir")), flags.boolean("unpack"))


def _pairs(req: _Req) -> tuple[tuple[str, str], ...]:
    """ENV/LABEL `k v` (legacy) or `k=v k2="v 2"` pairs; values as written (quotes kept)."""
    example = f"{req.keyword} key=value"
    text = req.require_args(example)
    words = split_words(text, req.escape)
    if "=" not in words[0]:
        parts = re.split(r"[\t\v\f\r ]+", text, maxsplit=1)
        if len(parts) < 2:
            raise req.error(f"{parts[0]} has no value", f"write it as: {example}")
        return ((parts[0], parts[1]),)
    pairs = []
    for word in words:
        key, has_eq, value = word.partition("=")
        if not has_eq:
            raise req.error(f"{word!r} has no value", f"write it as {word}=<value>")
        if not key:
            raise req.error(f"a name is empty in {word!r}", f"write it as: {example}")
        pairs.append((key, value))
    return tuple(pairs)


def _env(req: _Req) -> Env:
    req.flags()
    return Env(req.raw.span, req.raw.original, _pairs(req))


def _label(req: _Req) -> Label:
    req.flags()
    return Label(req.raw.span, req.raw.original, _pairs(req))


def _arg(req: _Req) -> Arg:
    req.flags()
    pairs: list[tuple[str, str | None]] = []
    for word in split_words(req.require_args("ARG <name>[=<default>]"), req.escape):
        key, has_eq, value = word.partition("=")
        if not key:
            raise req.error(f"a name is empty in {word!r}", "write it as: ARG name=default")
        pairs.append((key, value if has_eq else None))
    return Arg(req.raw.span, req.raw.original, tuple(pairs))


def _single(req: _Req, example: str) -> str:
    req.flags()
    return req.require_args(example)


def _workdir(req: _Req) -> Workdir:
    return Workdir(req.raw.span, req.raw.original, _single(req, "WORKDIR /path"))


def _user(req: _Req) -> User:
    return User(req.raw.span, req.raw.original, _single(req, "USER <user>[:<group>]"))


def _stopsignal(req: _Req) -> StopSignal:
    return StopSignal(req.raw.span, req.raw.original, _single(req, "STOPSIGNAL SIGTERM"))


def _maintainer(req: _Req) -> Maintainer:
    return Maintainer(req.raw.span, req.raw.original, _single(req, "MAINTAINER <name>"))


def _expose(req: _Req) -> Expose:
    req.flags()
    ports = split_whitespace(req.require_args("EXPOSE <port>[/<protocol>]..."))
    return Expose(req.raw.span, req.raw.original, tuple(ports))


def _volume(req: _Req) -> Volume:
    req.flags()
    array = req.json_or_none()
    paths = array if array is not None else split_whitespace(req.raw.args)
    if not paths or any(not p.strip() for p in paths):
        raise req.error("a volume path is empty",
                        'write it as: VOLUME /data  or  VOLUME ["/data"]')
    return Volume(req.raw.span, req.raw.original, tuple(p.strip() for p in paths))


def _shell(req: _Req) -> Shell:
    req.flags()
    array = req.json_or_none()
    if array is None:
        raise req.error("the arguments must be a JSON array",
                        'write it as: SHELL ["/bin/sh", "-c"]')
    if not array:
        raise req.error("the shell is empty", 'write it as: SHELL ["/bin/sh", "-c"]')
    return Shell(req.raw.span, req.raw.original, tuple(array))


def _healthcheck(req: _Req) -> Healthcheck:
    text = req.require_args("HEALTHCHECK [options] CMD <command>  or  HEALTHCHECK NONE")
    kind, rest = (re.split(r"\s+", text, maxsplit=1) + [""])[:2]
    if kind.upper() == "NONE":
        if rest.strip() or req.raw.flags:
            raise req.error("HEALTHCHECK NONE takes no arguments or options",
                            "write just: HEALTHCHECK NONE")
        return Healthcheck(req.raw.span, req.raw.original, None, 0, 0, 0, 0, 0)
    specs = [fl.string(n) for n in ("interval", "timeout", "start-period", "start-interval")]
    flags = req.flags(*specs, fl.string("retries"))
    if kind.upper() != "CMD":
        raise req.error(f"unknown type {kind!r}", "write HEALTHCHECK [options] CMD <command>")
    sub = _Req(RawInstruction(req.raw.keyword, (), rest.strip(), req.raw.original,
                              req.raw.span), req.source, req.escape)
    array = sub.json_or_none()
    if (array is None and not rest.strip()) or array == []:
        raise req.error("missing command after CMD", "write HEALTHCHECK CMD <command>")
    test = ("CMD", *array) if array is not None else ("CMD-SHELL", rest.strip())
    interval, timeout, start_period, start_interval = (
        _duration(req, s.name, flags.string(s.name)) for s in specs)
    return Healthcheck(req.raw.span, req.raw.original, test, interval, timeout, start_period,
                       start_interval, _retries(req, flags.string("retries")))


def _duration(req: _Req, name: str, value: str | None) -> int:
    if value is None or value == "":
        return 0
    try:
        ns = parse_duration(value)
    except ValueError:
        raise req.error(f"--{name}={value} is not a duration",
                        "use a number with a unit: 30s, 1m30s, 500ms, 2h") from None
    if 0 < ns < 1_000_000 or ns < 0:
        raise req.error(f"--{name}={value} is less than 1ms", "use at least 1ms, or 0 for default")
    return ns


def _retries(req: _Req, value: str | None) -> int:
    if value is None or value == "":
        return 0
    if not re.fullmatch(r"[+-]?\d+", value):
        raise req.error(f"--retries={value} is not a whole number", "e.g. --retries=3")
    if int(value) < 0:
        raise req.error(f"--retries={value} cannot be negative", "e.g. --retries=3")
    return int(value)


def _onbuild(req: _Req) -> Onbuild:
    req.flags()
    text = req.require_args("ONBUILD <instruction>")
    trigger = split_command(text, req.raw.span)
    keyword = trigger.keyword.upper()
    if keyword == "ONBUILD":
        raise req.error("chaining ONBUILD via ONBUILD ONBUILD isn't allowed",
                        "use a single ONBUILD with the trigger instruction")
    if keyword in ("FROM", "MAINTAINER"):
        raise req.error(f"{keyword} isn't allowed as an ONBUILD trigger",
                        "ONBUILD triggers can be any instruction except FROM and MAINTAINER")
    # parse the trigger now so that mistakes are reported here, not in a downstream build
    build_instruction(trigger, req.source, req.escape)
    return Onbuild(req.raw.span, req.raw.original, text)


_BUILDERS: dict[str, Callable[[_Req], Instruction]] = {
    "ADD": _add, "ARG": _arg, "CMD": _cmd, "COPY": _copy, "ENTRYPOINT": _entrypoint,
    "ENV": _env, "EXPOSE": _expose, "FROM": _from, "HEALTHCHECK": _healthcheck,
    "LABEL": _label, "MAINTAINER": _maintainer, "ONBUILD": _onbuild, "RUN": _run,
    "SHELL": _shell, "STOPSIGNAL": _stopsignal, "USER": _user, "VOLUME": _volume,
    "WORKDIR": _workdir,
}


def build_instruction(raw: RawInstruction, source: DockerfileSource, escape: str) -> Instruction:
    """Type one raw instruction; DockerfileError for unknown keywords or bad arguments."""
    req = _Req(raw, source, escape)
    builder = _BUILDERS.get(req.keyword)
    if builder is None:
        import difflib  # here: only an unknown name needs a suggestion

        close = difflib.get_close_matches(req.keyword, KEYWORDS, n=1, cutoff=0.5)
        hint = (f"did you mean {close[0]}?" if close
                else f"known instructions: {', '.join(KEYWORDS)}")
        col = source.line(raw.span.start_line).find(raw.keyword)
        raise source.error(f"unknown instruction {raw.keyword}", raw.span,
                           column=col + 1 if col >= 0 else None, hint=hint)
    return builder(req)
