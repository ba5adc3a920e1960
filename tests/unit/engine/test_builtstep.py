"""engine/stepcache.BuiltStep: a build's step as the next build reads it back."""

from __future__ import annotations

import json
from pathlib import Path

from layerbuild.engine.stepcache import BuiltStep, StepCache, chain
from layerbuild.store import Store

KEY = "sha256:" + "1" * 64
PARENT = "sha256:" + "2" * 64


def test_the_saved_form_reads_back_as_the_same_step() -> None:
    step = BuiltStep("app", 3, KEY, (("instruction", "RUN make"), ("env", "[]")), 1.5, PARENT)
    saved = json.loads(json.dumps(step.to_json()))
    assert BuiltStep.from_json(saved) == step
    assert saved == {
        "stage": "app",
        "index": 3,
        "key": KEY,
        "inputs": [["instruction", "RUN make"], ["env", "[]"]],
        "seconds": 1.5,
        "parent": PARENT,
    }


def test_a_from_step_has_no_parent_in_its_saved_form() -> None:
    step = BuiltStep("app", 1, KEY, (("base", "scratch"),), 0.0)
    assert "parent" not in step.to_json()
    assert BuiltStep.from_json(step.to_json()) == step


def test_damaged_entries_are_read_as_far_as_they_go() -> None:
    assert BuiltStep.from_json(["not", "a", "step"]) is None
    step = BuiltStep.from_json(
        {"stage": "s", "index": 2, "inputs": [["a", "b"], [1, "x"], "junk"], "seconds": "x"}
    )
    assert step == BuiltStep("s", 2, "", (("a", "b"),), 0.0, None)


def test_the_next_build_finds_the_steps_noted(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    first = StepCache(store, "id")
    key = chain(PARENT, [("instruction", "ENV A=1")])
    first.note_step("s", 2, key, 0.25, hit=False)
    first.finish()
    again = StepCache(store, "id")
    assert again.previous[("s", 2)] == BuiltStep("s", 2, str(key.digest), key.inputs, 0.25)
    assert again.previous_seconds("s", 2) == 0.25
    assert first.steps == [again.previous[("s", 2)].to_json()]
