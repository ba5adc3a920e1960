"""One module per op kind; the executor picks a step's op from `ops_for` by instruction type.

base.py holds the contract (`Op`: prepare, a pure cache_inputs, execute, reuse), meta.py the
config-only instructions and ARG, workdir.py WORKDIR, copy.py COPY and ADD, run.py RUN (its
mounts: engine/runmounts.py and runmounts_prepare.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.parser import Dockerfile
from layerbuild.engine.filesteps import FileSteps
from layerbuild.engine.layerwriter import LayerWriter
from layerbuild.engine.ops.base import Op
from layerbuild.engine.ops.copy import CopyOp
from layerbuild.engine.ops.meta import ArgOp, CmdOp, EnvOp, MetaOp
from layerbuild.engine.ops.run import RunOp
from layerbuild.engine.ops.workdir import WorkdirOp
from layerbuild.engine.runsteps import RunSteps
from layerbuild.engine.speedups.base import Speedups

_CONFIG_ONLY: tuple[type[ins.Instruction], ...] = (
    ins.Label,
    ins.Expose,
    ins.Volume,
    ins.StopSignal,
    ins.User,
    ins.Shell,
    ins.Healthcheck,
    ins.Onbuild,
    ins.Entrypoint,
    ins.Maintainer,
)


def ops_for(
    dockerfile: Dockerfile,
    files: FileSteps,
    layers: LayerWriter,
    runs: RunSteps,
    speedups: Speedups,
) -> Mapping[type[ins.Instruction], Op[Any]]:
    """The op of each instruction type a stage's steps may be, for one build; `speedups`:
    those the build runs with (engine/speedups/)."""
    meta = MetaOp(dockerfile, layers)
    copy = CopyOp(dockerfile, files, layers, runs, speedups)
    table: dict[type[ins.Instruction], Op[Any]] = dict.fromkeys(_CONFIG_ONLY, meta)
    table.update(
        {
            ins.Env: EnvOp(dockerfile, layers),
            ins.Arg: ArgOp(dockerfile, layers),
            ins.Cmd: CmdOp(dockerfile, layers),
            ins.Workdir: WorkdirOp(dockerfile, files, layers),
            ins.Copy: copy,
            ins.Add: copy,
            ins.Run: RunOp(runs),
        }
    )
    return table
