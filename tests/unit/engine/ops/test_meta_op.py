"""engine/ops/meta: a config-only step is keyed by its expanded text alone."""

from __future__ import annotations

from layerbuild.dockerfile import instructions as ins
from layerbuild.engine.ops.base import Prepared
from layerbuild.engine.ops.meta import ArgOp, CmdOp, EnvOp, MetaOp
from layerbuild.engine.stepcache import chain
from tests.unit.engine.ops.conftest import PARENT, MakeStage, parse


def test_the_key_is_the_expanded_instruction(stage: MakeStage) -> None:
    state = stage(env={"V": "1"})
    as_written = parse("LABEL version=$V")
    expanded = parse("LABEL version=1")
    assert MetaOp.cache_inputs(state, Prepared(expanded)) == (
        ("instruction", ins.describe(expanded)),
    )
    assert MetaOp.cache_inputs(state, Prepared(expanded)) != MetaOp.cache_inputs(
        state, Prepared(as_written)
    )


def test_the_stage_is_not_read_or_changed(stage: MakeStage) -> None:
    instr = parse("ENV A=b")
    before, other = stage(), stage(env={"X": "y"}, user="app", workdir="/srv")
    inputs = EnvOp.cache_inputs(before, Prepared(instr))
    assert inputs == EnvOp.cache_inputs(other, Prepared(instr))
    assert before.scope.expansion_env() == {}  # ENV is declared by prepare, not by the key
    assert before.meta == stage().meta


def test_arg_and_cmd_key_like_any_metadata_step(stage: MakeStage) -> None:
    for op, line in ((ArgOp, "ARG A=1"), (CmdOp, 'CMD ["run"]'), (MetaOp, "USER app")):
        instr = parse(line)
        assert op.cache_inputs(stage(), Prepared(instr)) == (("instruction", ins.describe(instr)),)


def test_the_same_inputs_chain_to_the_same_key(stage: MakeStage) -> None:
    prepared = Prepared(parse("EXPOSE 80"))
    first = chain(PARENT, MetaOp.cache_inputs(stage(), prepared))
    assert first == chain(PARENT, MetaOp.cache_inputs(stage(), prepared))
    assert first != chain(PARENT, MetaOp.cache_inputs(stage(), Prepared(parse("EXPOSE 81"))))
