"""Golden Dockerfiles: tests/golden/dockerfile/<case>/{Dockerfile,result.txt} and
tests/golden/dockerfile-negative/<case>/{Dockerfile,error.txt}.

Run with UPDATE_GOLDEN=1 to (re)write the expected files after an intended change, then review
the diff: the golden files are the record of how we read Dockerfiles.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from layerbuild.dockerfile.instructions import Instruction
from layerbuild.dockerfile.parser import Dockerfile, parse_dockerfile
from layerbuild.dockerfile.source import DockerfileSource
from layerbuild.errors import DockerfileError

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
POSITIVE = sorted(p for p in (GOLDEN / "dockerfile").iterdir() if p.is_dir())
NEGATIVE = sorted(p for p in (GOLDEN / "dockerfile-negative").iterdir() if p.is_dir())
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def dump_instruction(instr: Instruction) -> str:
    fields = [f for f in dataclasses.fields(instr) if f.name not in ("span", "original")]
    values = " ".join(f"{f.name}={getattr(instr, f.name)!r}" for f in fields)
    return f"{instr.span} {type(instr).__name__} {values}"


def dump(dockerfile: Dockerfile) -> str:
    lines = [f"directives {dict(sorted(dockerfile.directives.items()))!r}"]
    lines += [f"global {dump_instruction(arg)}" for arg in dockerfile.global_args]
    for stage in dockerfile.stages:
        lines.append(f"stage {stage.index} name={stage.name!r}")
        lines.append(f"  {dump_instruction(stage.from_)}")
        lines += [f"  {dump_instruction(i)}" for i in stage.instructions]
    return "\n".join(lines) + "\n"


def _check(expected_file: Path, actual: str) -> None:
    if UPDATE:
        expected_file.write_text(actual, encoding="utf-8")
        return
    assert expected_file.exists(), f"{expected_file} missing: run with UPDATE_GOLDEN=1"
    assert actual == expected_file.read_text(encoding="utf-8")


def _source(case: Path) -> DockerfileSource:
    return DockerfileSource("Dockerfile", (case / "Dockerfile").read_text(encoding="utf-8"))


def test_enough_cases() -> None:
    assert len(POSITIVE) >= 15 and len(NEGATIVE) >= 8


@pytest.mark.parametrize("case", POSITIVE, ids=[p.name for p in POSITIVE])
def test_positive(case: Path) -> None:
    _check(case / "result.txt", dump(parse_dockerfile(_source(case))))


@pytest.mark.parametrize("case", NEGATIVE, ids=[p.name for p in NEGATIVE])
def test_negative(case: Path) -> None:
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile(_source(case))
    _check(case / "error.txt", str(info.value) + "\n")
