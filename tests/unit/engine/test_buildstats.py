"""engine/buildstats: hit ratios over one Dockerfile's builds, causes, and the advice."""

from __future__ import annotations

from typing import Any

from layerbuild.engine.buildstats import advice, cause_of, destination, step_stats

COPY = "COPY . /app/"


def _build(copy_reason: str | None, run_reason: str = "parent step missed") -> dict[str, Any]:
    copy = {"stage": "s", "index": 2, "line": 7, "instruction": COPY,
            "cache": "hit" if copy_reason is None else "miss", "reason": copy_reason or ""}
    run = {"stage": "s", "index": 3, "line": 8, "instruction": "RUN make",
           "cache": "hit" if copy_reason is None else "miss", "reason": run_reason}
    return {"steps": [copy, run]}


def test_causes_are_the_inputs_reasons_name() -> None:
    assert cause_of("/app/README.md changed", "app") == "file:README.md"
    assert cause_of("/app/docs/a/b.md added", "app") == "file:docs/"
    assert cause_of("/src/x.py removed") == "file:src/"
    assert cause_of("build arg VERSION changed") == "arg:VERSION"
    assert cause_of("base image changed") == "base"
    assert cause_of("instruction changed (was: RUN x)") == "instruction"
    assert cause_of("parent step missed") == "cascade"
    assert cause_of("no previous build of this step") == "first"
    in_ctx = {"README.md", "docs", "docs/x.md"}.__contains__
    assert cause_of("/app/docs/x.md changed", "", in_ctx) == "file:docs/"  # COPY . . in /app
    assert cause_of("/app/README.md changed", "", in_ctx) == "file:README.md"
    assert cause_of("/app/gone.md removed", "", in_ctx) == "file:app/"  # not there: as it is
    assert destination("COPY --chown=1 . /app/") == "app"
    assert destination('COPY ["a", "/srv/x"]') == "srv/x"
    assert destination("COPY . .") == "" and destination("RUN make") == ""


def test_the_advice_the_issue_gives() -> None:
    reasons = ["/app/README.md changed"] * 5 + ["/app/docs/x.md changed"] * 3 + [
        "/app/src/main.py changed", None]
    stats = step_stats([_build(r) for r in reasons])
    copy, run = stats
    assert (copy.builds, copy.hits, copy.misses) == (10, 1, 9)
    assert advice(copy) == (
        "`COPY . /app/` at line 7 missed in 9 of the last 10 builds, 9 times because of "
        "README.md or docs/ or src/: add them to .dockerignore or copy the manifest first"
    )
    assert run.cascaded == 9 and advice(run) == ""  # the COPY's misses, not its own
    assert copy.to_json()["causes"] == {"file:README.md": 5, "file:docs/": 3, "file:src/": 1}


def test_build_arg_base_and_edited_steps() -> None:
    stats = step_stats([_build(None, ""), _build("build arg V changed")])
    assert "build arg V changed: declare the ARG" in advice(stats[0])
    base = step_stats([_build("base image changed")])[0]
    assert advice(base).endswith("pin it by digest (FROM image@sha256:...)")
    edited = _build("/app/a changed")
    edited["steps"][0]["instruction"] = "COPY src/ /app/"
    stats = step_stats([_build(None), edited])  # newest first: the edit is not counted
    assert (stats[0].builds, stats[0].hits, advice(stats[0])) == (1, 1, "")
    assert step_stats([]) == []
