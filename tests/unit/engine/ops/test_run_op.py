"""engine/ops/run: a RUN is keyed as BuildKit's ExecOp.CacheMap (runstep.cache_inputs), from
the stage's variables and config and what prepare read (its mounts, the build's settings)."""

from __future__ import annotations

import json
from dataclasses import replace

from layerbuild.dockerfile import instructions as ins
from layerbuild.engine.ops.run import RunOp, RunPrepared, run_inputs
from layerbuild.sandbox.limits import Ulimit
from layerbuild.sandbox.netfiles import HostEntry
from tests.unit.engine.ops.conftest import MakeStage, parse


def _run(line: str = "RUN make") -> RunPrepared:
    return RunPrepared(parse(line))


def test_the_inputs_of_a_plain_run(stage: MakeStage) -> None:
    state = stage(env={"A": "1"}, user="app", workdir="/src")
    prepared = _run()
    assert dict(RunOp.cache_inputs(state, prepared)) == {
        "instruction": ins.describe(prepared.instr),
        "argv": json.dumps(["/bin/sh", "-c", "make"]),
        "env": json.dumps([["A", "1"]]),
        "user": "app",
        "workdir": "/src",
        "network": "default",
    }


def test_mounts_and_build_settings_are_keyed_only_when_set(stage: MakeStage) -> None:
    plain = dict(run_inputs(stage(), _run()))
    prepared = replace(
        _run(),
        mounts_key="[mounts]",
        network="none",
        hosts=(HostEntry("db", "10.0.0.2"),),
        shm_size=1 << 20,
        ulimits=(Ulimit("nofile", 512, 512),),
    )
    keyed = dict(run_inputs(stage(), prepared))
    assert set(keyed) - set(plain) == {"mounts", "hosts", "shm-size", "ulimits"}
    assert keyed["mounts"] == "[mounts]"
    assert keyed["network"] == "none"
    assert keyed["shm-size"] == str(1 << 20)


def test_the_stage_decides_env_user_and_workdir(stage: MakeStage) -> None:
    prepared = _run()
    base = run_inputs(stage(), prepared)
    for other in (stage(env={"A": "2"}), stage(user="app"), stage(workdir="/x")):
        assert run_inputs(other, prepared) != base
    assert run_inputs(stage(), prepared) == base  # the same stage, the same inputs


def test_the_stage_is_not_changed(stage: MakeStage) -> None:
    state = stage(env={"A": "1"})
    before = (state.meta, state.scope.expansion_env(), list(state.layers), state.key)
    run_inputs(state, _run("RUN echo $A > /f"))
    assert (state.meta, state.scope.expansion_env(), list(state.layers), state.key) == before
