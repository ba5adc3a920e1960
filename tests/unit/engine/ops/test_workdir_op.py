"""engine/ops/workdir: WORKDIR is keyed by its text; the directories it makes follow from
the parent key, so they are not an input (prepare does not even work them out)."""

from __future__ import annotations

from layerbuild.dockerfile import instructions as ins
from layerbuild.engine.ops.base import Prepared
from layerbuild.engine.ops.workdir import WorkdirOp
from layerbuild.image.changes import Change, ChangeKind
from tests.unit.engine.ops.conftest import MakeStage, parse


def test_the_key_is_the_instruction_not_the_directories(stage: MakeStage) -> None:
    instr = parse("WORKDIR /srv/app")
    made = [Change("srv", ChangeKind.DIR, 0o755), Change("srv/app", ChangeKind.DIR, 0o755)]
    with_dirs = WorkdirOp.cache_inputs(stage(), Prepared(instr, changes=made))
    existing = WorkdirOp.cache_inputs(stage(), Prepared(instr, changes=[]))
    assert with_dirs == existing == (("instruction", ins.describe(instr)),)


def test_another_path_is_another_key(stage: MakeStage) -> None:
    first = WorkdirOp.cache_inputs(stage(), Prepared(parse("WORKDIR /a")))
    assert first != WorkdirOp.cache_inputs(stage(), Prepared(parse("WORKDIR /b")))
