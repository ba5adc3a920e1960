"""engine/ops.ops_for: every instruction a step may be has its op, by instruction type."""

from __future__ import annotations

import typing
from typing import Any, cast

from layerbuild.dockerfile import instructions as ins
from layerbuild.engine.ops import ops_for
from layerbuild.engine.ops.copy import CopyOp
from layerbuild.engine.ops.meta import ArgOp, CmdOp, EnvOp, MetaOp
from layerbuild.engine.ops.run import RunOp
from layerbuild.engine.ops.workdir import WorkdirOp


def test_every_step_instruction_has_its_op() -> None:
    none = cast(Any, None)  # the table only places the build's helpers in its ops
    table = ops_for(none, none, none, none, none)
    kinds = set(typing.get_args(ins.Instruction)) - {ins.From}
    assert set(table) == kinds
    assert isinstance(table[ins.Copy], CopyOp) and table[ins.Add] is table[ins.Copy]
    assert isinstance(table[ins.Run], RunOp)
    assert isinstance(table[ins.Workdir], WorkdirOp)
    assert (type(table[ins.Arg]), type(table[ins.Env]), type(table[ins.Cmd])) == (
        ArgOp,
        EnvOp,
        CmdOp,
    )
    assert type(table[ins.Label]) is MetaOp
