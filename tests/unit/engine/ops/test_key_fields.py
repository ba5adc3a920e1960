"""Every field of every instruction reaches its step's cache key, or is listed here with the
reason it must not (modules.md: "each field of each Instruction is either in cache_inputs or
listed as deliberately excluded").

A field added to an instruction without a thought for the key fails here: two instructions
that differ in it would share a key, and one would be served the other's cached result.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from layerbuild.dockerfile import instructions as ins
from layerbuild.engine.ops.base import instruction_inputs
from tests.unit.engine.ops.conftest import parse

# (instruction, field) -> why a change of it must not change the key
EXCLUDED: dict[tuple[type[ins.Instruction], str], str] = {}
# fields no Dockerfile can set, so no sample can either
# (the parser refuses ADD --from and ADD --parents, as BuildKit's Dockerfile frontend does)
NEVER_SET = {("Add", "from_stage"), ("Add", "parents")}
# fields of every instruction that say where it was written, not what it does
POSITION = frozenset({"span", "original"})

SAMPLES = [
    "RUN --mount=type=cache,target=/c --network=none echo hi",
    "RUN <<EOF\necho hi\nEOF",
    "RUN --security=insecure true",
    'CMD ["run", "it"]',
    "ENTRYPOINT run it",
    "COPY --from=base --chown=1:2 --chmod=644 --link --parents --exclude=*.md a b /dst/",
    "COPY <<EOF /dst\nhello\nEOF",
    "ADD --checksum=sha256:" + "0" * 64 + " --keep-git-dir=true --unpack=true a.tar /dst/",
    "ADD <<EOF /dst\nhello\nEOF",
    "ADD --chown=1:2 --chmod=644 --link --exclude=*.md a /dst/",
    "ENV A=1 B=2",
    "ARG A=1 B",
    "WORKDIR /app",
    "USER 1:2",
    "LABEL a=1",
    "EXPOSE 80/tcp",
    'VOLUME ["/data"]',
    "STOPSIGNAL SIGTERM",
    "HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --start-interval=2s "
    "--retries=4 CMD true",
    'SHELL ["/bin/bash", "-c"]',
    "ONBUILD RUN make",
    "MAINTAINER someone",
]


def _other(value: Any, name: str) -> Any:
    """A value of the same kind as `value` that differs from it."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, tuple) and value and isinstance(value[0], ins.Heredoc):
        first = value[0]
        return (dataclasses.replace(first, content=first.content + "more\n"), *value[1:])
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return (*value, ("X", "1"))
    if isinstance(value, tuple):
        return (*value[:-1], value[-1] + "x")  # the last word: a shell form has only one
    raise AssertionError(f"no other value for {name}={value!r}: give the sample one")


def _fields() -> list[tuple[str, ins.Instruction, str]]:
    cases = []
    for line in SAMPLES:
        instr = parse(line)
        for field in dataclasses.fields(instr):
            if field.name in POSITION:
                continue
            if getattr(instr, field.name) in (None, ()):
                continue  # another sample sets it: test_samples_set_every_optional_field
            cases.append((line.split("\n")[0], instr, field.name))
    return cases


@pytest.mark.parametrize(("line", "instr", "name"), _fields())
def test_every_field_changes_the_key_or_is_excluded(
    line: str, instr: ins.Instruction, name: str
) -> None:
    changed = dataclasses.replace(instr, **{name: _other(getattr(instr, name), name)})
    same = instruction_inputs(changed) == instruction_inputs(instr)
    reason = EXCLUDED.get((type(instr), name))
    if reason is None:
        assert not same, f"{line}: {name} does not reach the key (add it, or list it as EXCLUDED)"
    else:
        assert same, f"{line}: {name} is EXCLUDED ({reason}) but changes the key"


def test_samples_set_every_optional_field() -> None:
    """A field left None in every sample would be tested by nothing above."""
    unset: dict[str, set[str]] = {}
    seen: dict[str, set[str]] = {}
    for line in SAMPLES:
        instr = parse(line)
        for field in dataclasses.fields(instr):
            bucket = seen if getattr(instr, field.name) not in (None, ()) else unset
            bucket.setdefault(type(instr).__name__, set()).add(field.name)
    never = {
        kind: {n for n in names - seen.get(kind, set()) if (kind, n) not in NEVER_SET}
        for kind, names in unset.items()
    }
    assert not any(never.values()), f"fields no sample sets: {never}"


def test_every_instruction_kind_but_from_has_a_sample() -> None:
    """FROM is keyed by the base it names (executor._base), not by its text."""
    kinds = {type(parse(line)) for line in SAMPLES}
    every = {
        cls
        for cls in vars(ins).values()
        if isinstance(cls, type) and dataclasses.is_dataclass(cls) and getattr(cls, "keyword", "")
    }
    assert every - kinds == {ins.From}
