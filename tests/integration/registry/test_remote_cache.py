"""`--cache-to/--cache-from type=registry` against the real Distribution registry: a second
machine (a fresh --root) gets cache hits from another machine's build."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Layerbuild, hash_blobs, make_context, run_tool
from tests.support.registry import RegistryServer

pytestmark = [pytest.mark.registry, pytest.mark.tools]

DOCKERFILE = """\
FROM busybox AS tool
RUN echo tool > /tool && echo other > /other
FROM busybox
ARG V=1
COPY src/ /app/
COPY --from=tool /tool /tool
RUN echo "$V" > /v && cat /app/a.txt /tool > /all
"""


def _steps(lb: Layerbuild, ctx: Path, *args: str) -> list[dict[str, Any]]:
    report = ctx.parent / "report.json"
    lb.build(ctx, "-t", "app:1", "--report", report, *args)
    steps = json.loads(report.read_text())["steps"]
    assert isinstance(steps, list)
    return steps


def test_fresh_store_hits_through_the_registry(
    registry: RegistryServer,
    lb: Layerbuild,
    new_store: Callable[[str], Layerbuild],
    tmp_path: Path,
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": DOCKERFILE, "src/a.txt": "a\n"})
    ref = f"{registry.host}/team/app:buildcache"
    lb.build(ctx, "-t", "app:1", "--cache-to", f"type=registry,ref={ref},mode=max")

    # what we pushed is an ordinary OCI manifest to other tools
    raw = run_tool("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}")
    manifest = json.loads(raw)
    assert manifest["config"]["mediaType"] == "application/vnd.layerbuild.cache.config.v1+json"
    assert len(manifest["layers"]) == 4  # RUN in tool; COPY, COPY --from, RUN in the final

    fresh = new_store("machine-2")
    steps = _steps(fresh, ctx, "--cache-from", f"type=registry,ref={ref}")
    assert [s["cache"] for s in steps] == ["hit"] * len(steps)
    assert fresh.inspect("app:1")["Digest"] == lb.inspect("app:1")["Digest"]
    assert hash_blobs(fresh.store) == []

    # a change on machine 3 misses from the changed step on, and only there
    other = new_store("machine-3")
    steps = _steps(other, ctx, "--cache-from", f"type=registry,ref={ref}", "--build-arg", "V=2")
    assert [s["cache"] for s in steps][-2:] == ["hit", "miss"]
    assert all(s["cache"] == "hit" for s in steps[:-1])


def test_mode_min_pushes_the_final_image_steps_only(
    registry: RegistryServer,
    lb: Layerbuild,
    new_store: Callable[[str], Layerbuild],
    tmp_path: Path,
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": DOCKERFILE, "src/a.txt": "a\n"})
    ref = f"{registry.host}/team/app:min"
    lb.build(ctx, "-t", "app:1", "--cache-to", f"type=registry,ref={ref}")
    fresh = new_store("machine-2")
    steps = _steps(fresh, ctx, "--cache-from", f"type=registry,ref={ref}")
    by_stage = {(s["stage"], s["index"]): s["cache"] for s in steps}
    assert by_stage[("tool", 2)] == "miss"  # not exported in min mode, rebuilt identically
    assert [c for (stage, _), c in by_stage.items() if stage != "tool"] == ["hit"] * 5


def test_a_cache_ref_that_does_not_exist_yet_is_a_note(
    registry: RegistryServer, lb: Layerbuild, tmp_path: Path
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": DOCKERFILE, "src/a.txt": "a\n"})
    ref = f"{registry.host}/team/app:never-pushed"
    proc = lb.build(ctx, "--cache-from", f"type=registry,ref={ref}")
    assert f"no cache at {ref} yet" in proc.stdout + proc.stderr
