"""A failed step, reported: its StepFailed event, the step named in its error, and an OSError of
the machine's making (a full disk, a permission, a read-only file system, ...) turned into a
HostError that names the path (errors.host_error), which the CLI prints without a traceback.
Any other OSError is a bug and goes on as it is."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from layerbuild.dockerfile import instructions as ins
from layerbuild.engine.events import BuildEvent, StepFailed
from layerbuild.errors import BuildError, HostError, LayerbuildError, NotCached
from layerbuild.hosterrors import host_error


@contextlib.contextmanager
def reported(
    emit: Callable[[BuildEvent], None],
    step_id: int,
    started: float,
    name: Callable[[], str],
    store: str,
) -> Iterator[None]:
    """Around one step: `name()` names it in a BuildError or HostError that has no step yet;
    `store` is the store's root, named in a HostError about a path in it."""
    try:
        yield
    except (LayerbuildError, OSError) as e:
        error = e if isinstance(e, LayerbuildError) else host_error(e, store=store)
        if error is None:
            raise
        emit(StepFailed(step_id, time.monotonic() - started, str(error)))
        if isinstance(error, BuildError | HostError) and error.step is None:
            error.step = name()
        if error is not e:
            raise error from e
        raise


def step_name(dockerfile: str, stage: str, instr: ins.Instruction) -> str:
    """`Dockerfile:7 (stage build) RUN make ...`: where a failed step is."""
    line = instr.span.start_line
    text = " ".join(instr.original.split())
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{dockerfile}:{line} (stage {stage}) {text}"


def expect_cached(stages: frozenset[str], stage: str, reason: str) -> None:
    """`build --expect-cached[=STAGE,...]`: a step of such a stage missed the cache, so the build
    stops before running it (the step is named by `reported`, around it)."""
    if "*" in stages or stage.lower() in stages:
        raise NotCached(
            f"--expect-cached: the step is not cached ({reason or 'no cache record'})",
            hint="the build stopped before running it; `layerbuild build --dry-run` shows every "
            "step that would run, and `cache compare` what changed since the last build",
        )
