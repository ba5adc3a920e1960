"""Build history (docs/history.md): every build, successful, failed or killed, leaves a record
that `builds ls|show|logs|rm|export|stats` read and `cache compare` compares, by id prefix or
`^N`; the bounds are kept after each build and by `prune`."""

from __future__ import annotations

import hashlib
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Layerbuild, make_context, running

pytestmark = [pytest.mark.root, pytest.mark.overlay]

DOCKERFILE = """\
FROM busybox
ARG API_TOKEN=none
COPY . /app/
RUN echo built from $(cat /app/README.md) > /built
"""
FILES = {"README.md": "one\n", "docs/a.md": "a\n", "src/main.c": "int main;\n"}


def _ctx(tmp_path: Path, dockerfile: str = DOCKERFILE) -> Path:
    return make_context(tmp_path, {"Dockerfile": dockerfile, **FILES})


def _ls(lb: Layerbuild, *args: str) -> list[dict[str, Any]]:
    rows = json.loads(lb.ok("builds", "ls", "--format", "json", *args).stdout)
    assert isinstance(rows, list)
    return rows


def _export(lb: Layerbuild, ref: str, *args: str, **kw: Any) -> dict[str, Any]:
    record = json.loads(lb.ok("builds", "export", ref, *args, **kw).stdout)
    assert isinstance(record, dict)
    return record


def test_a_successful_build_is_recorded_whole(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    lb.build(ctx, "-t", "h:1", "--build-arg", "API_TOKEN=s3cret")
    (row,) = _ls(lb)
    assert (row["status"], row["exit_code"], row["tags"]) == ("completed", 0, ["h:1"])
    assert (row["cached"], row["steps"]) == (1, 4)  # FROM "hits"; nothing else was built yet
    record = _export(lb, row["id"])
    digest = hashlib.sha256((ctx / "Dockerfile").read_bytes()).hexdigest()
    assert record["dockerfile"] == str(ctx / "Dockerfile")
    assert record["dockerfile_digest"] == f"sha256:{digest}"
    assert (record["context"], record["platform"]) == (str(ctx), "linux/amd64")
    assert record["build_args"] == {"API_TOKEN": "****"}
    assert "s3cret" not in json.dumps(record)
    copy, run = record["steps"][2:]
    files = copy["files"]  # /app, /app/docs, /app/src, 3 files and the Dockerfile
    size = sum(map(len, FILES.values())) + len(DOCKERFILE)
    assert (files["written"], files["removed"], files["bytes"]) == (7, 0, size)
    assert "+ /app/README.md" in files["paths"] and files["added"] == 7
    assert copy["layer_size"] > 0 and copy["layer"].startswith("sha256:")
    assert run["files"]["paths"][-1].endswith(" /built")
    shown = lb.ok("builds", "show", row["id"][:6]).stdout
    assert "why: no previous build of this step" in shown and "COPY . /app/" in shown
    assert "API_TOKEN=****" in shown
    logs = lb.ok("builds", "logs", row["id"][:6]).stdout
    assert logs.startswith("#1 FROM busybox\n#1 base busybox sha256:")
    out = tmp_path / "rec.json"
    lb.ok("builds", "export", row["id"], "-o", out)
    assert json.loads(out.read_text())["id"] == row["id"]


def test_a_failed_build_keeps_its_error_and_output(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM busybox\nRUN echo boom-output && exit 3\n")
    assert lb("build", ctx).returncode == 4
    (row,) = _ls(lb)
    assert (row["status"], row["exit_code"]) == ("failed", 4)
    record = _export(lb, "^0", "-f", ctx / "Dockerfile")
    assert "exit code 3" in record["error"]
    assert record["steps"][1]["cache"] == "error"
    logs = lb.ok("builds", "logs", row["id"], "--step", "2").stdout
    assert "#2 boom-output" in logs
    assert "failed (exit 4)" in lb.ok("builds", "show", row["id"]).stdout


def test_a_killed_build_is_listed_with_what_it_did(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY docs /docs\nRUN sleep 7\n")
    proc = lb.spawn("build", "--progress", "plain", ctx)
    deadline = time.monotonic() + 60
    while not running("sleep", "7"):
        assert time.monotonic() < deadline and proc.poll() is None, "the RUN step never started"
        time.sleep(0.02)
    assert _ls(lb)[0]["status"] == "running"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    (row,) = _ls(lb)
    assert row["status"] == "killed"
    steps = _export(lb, row["id"])["steps"]
    assert [(s["instruction"], s["cache"]) for s in steps] == [
        ("FROM busybox", "hit"), ("COPY docs /docs", "miss")]
    assert "Status:     killed" in lb.ok("builds", "show", row["id"]).stdout


def test_an_interrupted_build_says_so(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM busybox\nRUN sleep 8\n")
    proc = lb.spawn("build", "--progress", "plain", ctx)
    deadline = time.monotonic() + 60
    while not running("sleep", "8"):
        assert time.monotonic() < deadline and proc.poll() is None, "the RUN step never started"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    (row,) = _ls(lb)
    assert (row["status"], row["exit_code"]) == ("interrupted", 130)


def test_ids_caret_rm_and_cache_compare(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    lb.build(ctx)
    (ctx / "README.md").write_text("two\n")
    lb.build(ctx)
    other = _ctx(tmp_path / "other", "FROM busybox\nENV X=1\n")
    lb.build(other)
    newest, second, first = _ls(lb)
    assert _export(lb, "^0", cwd=ctx)["id"] == second["id"]  # the latest of ./Dockerfile
    assert _export(lb, "^1", cwd=ctx)["id"] == first["id"]
    assert _export(lb, "^0", "-f", other / "Dockerfile")["id"] == newest["id"]
    assert [r["id"] for r in _ls(lb, "--dockerfile", str(ctx / "Dockerfile"))] == [
        second["id"], first["id"]]
    assert [r["id"] for r in _ls(lb, "--context", str(other))] == [newest["id"]]
    assert "the history holds 2 build(s)" in lb("builds", "show", "^2", cwd=ctx).stderr
    # with no argument: the last two builds of ./Dockerfile
    compared = lb.ok("cache", "compare", cwd=ctx).stdout
    assert "/app/README.md changed" in compared
    assert compared == lb.ok("cache", "compare", first["id"][:8], second["id"][:8]).stdout
    as_json = json.loads(lb.ok("cache", "compare", "^1", "^0", "--format", "json", cwd=ctx).stdout)
    assert [s["b"] for s in as_json["steps"]] == ["hit", "hit", "miss", "miss"]
    assert lb.ok("builds", "rm", first["id"][:8]).stdout.strip() == first["id"]
    assert [r["id"] for r in _ls(lb)] == [newest["id"], second["id"]]
    gone = lb("cache", "compare", first["id"], second["id"])
    assert gone.returncode != 0 and "nor a build of the history" in gone.stderr
    lb.ok("builds", "rm", "--all")
    assert _ls(lb) == []


def test_stats_name_the_inputs_that_made_a_step_miss(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    lb.build(ctx)
    for n in range(3):
        (ctx / "README.md").write_text(f"{n}\n")
        lb.build(ctx)
    (ctx / "docs" / "a.md").write_text("changed\n")
    lb.build(ctx)
    lb.build(ctx)  # fully cached
    out = lb.ok("builds", "stats", cwd=ctx).stdout
    assert (
        "`COPY . /app/` at line 3 missed in 5 of the last 6 builds, 4 times because of "
        "README.md or docs/: add them to .dockerignore or copy the manifest first"
    ) in out
    stats = json.loads(lb.ok("builds", "stats", "-n", "3", "--format", "json", cwd=ctx).stdout)
    copy = stats["steps"][2]
    assert (stats["builds"], copy["hits"], copy["misses"]) == (3, 1, 2)
    assert copy["causes"] == {"file:README.md": 1, "file:docs/": 1}


def test_the_bounds_after_each_build_and_by_prune(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM busybox\nENV A=1\n")
    for _ in range(3):
        lb.build(ctx, env={"LAYERBUILD_HISTORY_BUILDS": "2"})
    assert len(_ls(lb)) == 2
    lb.build(ctx, env={"LAYERBUILD_HISTORY": "0"})  # no record
    assert len(_ls(lb)) == 2
    pruned = lb.ok("prune", env={"LAYERBUILD_HISTORY_BUILDS": "1"})
    assert "removed 1 build records" in pruned.stdout
    assert len(_ls(lb)) == 1
    bad = lb("build", ctx, env={"LAYERBUILD_HISTORY_BUILDS": "many"})
    assert bad.returncode == 2 and "LAYERBUILD_HISTORY_BUILDS" in bad.stderr
