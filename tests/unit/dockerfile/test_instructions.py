from __future__ import annotations

import dataclasses

import pytest

from layerbuild.dockerfile import flags as fl
from layerbuild.dockerfile.durations import format_duration, parse_duration
from layerbuild.dockerfile.instructions import Add, Copy, Env, Instruction, Run, describe
from layerbuild.dockerfile.parser import parse_dockerfile
from layerbuild.dockerfile.source import DockerfileSource, Span
from layerbuild.errors import DockerfileError


def _one(line: str) -> Instruction:
    dockerfile = parse_dockerfile(DockerfileSource("Dockerfile", f"FROM a\n{line}\n"))
    return dockerfile.stages[0].instructions[0]


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("COPY --link --chown=1:1 a b /dest/", "COPY --chown=1:1 --link a b /dest/"),
        ('COPY ["a b", "/d/"]', 'COPY ["a b", "/d/"]'),
        ("copy --exclude=x --from=s --exclude=y a /", "COPY --from=s --exclude=x --exclude=y a /"),
        ("ADD --unpack=false --checksum=sha256:00 u /",
         "ADD --checksum=sha256:00 --unpack=false u /"),
        ("RUN --network=none --mount=type=cache,target=/c make",
         "RUN --mount=type=cache,target=/c --network=none make"),
        ('CMD [ "a",  "b" ]', 'CMD ["a", "b"]'),
        ("ENV A b c", 'ENV A="b c"'),
        ('ENV A=1 B="x y"', 'ENV A=1 B="x y"'),
        ("ARG A B=2", "ARG A B=2"),
        ("HEALTHCHECK --retries=2 --interval=90s CMD true",
         "HEALTHCHECK --interval=1m30s --retries=2 CMD true"),
        ('HEALTHCHECK CMD ["true"]', 'HEALTHCHECK CMD ["true"]'),
        ("healthcheck none", "HEALTHCHECK NONE"),
        ("VOLUME /a /b", "VOLUME /a /b"),
        ("ONBUILD RUN x", "ONBUILD RUN x"),
        ("workdir /app", "WORKDIR /app"),
    ],
)
def test_describe_is_canonical(written: str, canonical: str) -> None:
    assert describe(_one(written)) == canonical


def test_describe_includes_heredoc_bodies() -> None:
    instr = _one("RUN <<EOF cat\nhello\nEOF")
    assert isinstance(instr, Run)
    assert describe(instr) == "RUN <<EOF cat\nhello\nEOF"
    body = dataclasses.replace(instr.heredocs[0], content="bye\n")
    assert describe(dataclasses.replace(instr, heredocs=(body,))) != describe(instr)


def test_describe_of_from() -> None:
    dockerfile = parse_dockerfile(DockerfileSource("D", "from --platform=linux/arm64 a as B\n"))
    assert describe(dockerfile.stages[0].from_) == "FROM --platform=linux/arm64 a AS b"


def test_add_is_not_a_copy() -> None:
    add = _one("ADD a b")
    assert isinstance(add, Add) and not isinstance(add, Copy)


def test_instruction_values_are_frozen() -> None:
    env = _one("ENV A=1")
    assert isinstance(env, Env)
    with pytest.raises(dataclasses.FrozenInstanceError):
        env.pairs = ()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "ns", "canonical"),
    [("30s", 30 * 10**9, "30s"), ("1m30s", 90 * 10**9, "1m30s"),
     ("1.5h", 5400 * 10**9, "1h30m0s"), ("500ms", 5 * 10**8, "500ms"), ("0", 0, "0s"),
     ("2us", 2000, "2µs"), ("1.25s", 125 * 10**7, "1.25s")],
)
def test_durations(text: str, ns: int, canonical: str) -> None:
    assert parse_duration(text) == ns
    assert format_duration(ns) == canonical


@pytest.mark.parametrize("text", ["30", "", "s", "1x", "1m 30s", "1.s.5"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_flags_parse_kinds() -> None:
    source = DockerfileSource("D", "COPY --a=1 --b --c=x --c=y --d=false s d\n")
    parsed = fl.parse_flags(["--a=1", "--b", "--c=x", "--c=y", "--d=false"],
                            [fl.string("a"), fl.boolean("b"), fl.strings("c"), fl.boolean("d"),
                             fl.string("e")], keyword="copy", source=source, span=Span(1, 1))
    assert parsed.string("a") == "1" and parsed.boolean("b") is True
    assert parsed.strings("c") == ("x", "y") and parsed.boolean("d") is False
    assert parsed.string("e") is None and parsed.strings("e") == ()


def test_flags_errors_point_at_the_flag() -> None:
    source = DockerfileSource("D", "COPY --from=a --from=b s d\n")
    with pytest.raises(DockerfileError, match="more than once") as info:
        fl.parse_flags(["--from=a", "--from=b"], [fl.string("from")], keyword="COPY",
                       source=source, span=Span(1, 1))
    assert (info.value.line, info.value.column) == (1, 6)
    with pytest.raises(DockerfileError, match="accepts no flags"):
        fl.parse_flags(["--x"], [], keyword="ENV", source=source, span=Span(1, 1))
