"""fsck and delta snapshots: a delta over a present base is sound; one whose base is gone
(removed behind gc's back) is reported as an orphan snapshot and removed by --repair."""

from __future__ import annotations

from pathlib import Path

from layerbuild.store import Store
from layerbuild.store.fsck import check, run
from layerbuild.store.fsckproblem import REMOVE_PATH

A, B, C = ("a" * 64, "b" * 64, "c" * 64)


def test_a_delta_without_its_base_is_an_orphan(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    layers = tmp_path / "snapshots" / "layers"
    for name in (B, f"{A}-on-{B}", f"{C}-on-{A}-userns"):
        (layers / name / "etc").mkdir(parents=True)
    problems = check(store)
    assert [(p.kind, p.where, p.action) for p in problems] == [
        ("orphan snapshot", f"snapshots/layers/{C}-on-{A}-userns", REMOVE_PATH)
    ]
    assert "base snapshot is gone" in problems[0].what
    result = run(store, fix=True)
    assert result.remaining == ()
    assert sorted(p.name for p in layers.iterdir()) == [f"{A}-on-{B}", B]
