"""--progress rawjson: one JSON object per event and line, with the event's own fields."""

from __future__ import annotations

import io
import json

from layerbuild.digest import sha256_bytes
from layerbuild.engine.events import (
    BuildDone,
    BuildEvent,
    CacheTransfer,
    Log,
    StepDone,
    StepFailed,
    StepStarted,
)
from layerbuild.ui.progress import RawJsonProgress, make_progress
from layerbuild.ui.progressmodes import MODES

LAYER = sha256_bytes(b"layer")
EVENTS: list[BuildEvent] = [
    StepStarted(1, "stage-0", 1, 2, 1, "FROM busybox"),
    Log(1, "base busybox"),
    StepDone(1, 0.5, cached=True, key=LAYER),
    StepStarted(2, "stage-0", 2, 2, 2, "COPY a /a"),
    StepDone(2, 1.25, LAYER, False, "1 files", LAYER, "no previous build"),
    StepFailed(3, 0.1, "exit code 1\nmore"),
    CacheTransfer("import", "dir", "none"),
    BuildDone(LAYER, ("app:1", "app:latest"), 2.0, saved=0.5),
]


def test_each_event_is_one_json_line() -> None:
    out = io.StringIO()
    renderer = RawJsonProgress(out)
    for event in EVENTS:
        renderer(event)
    renderer.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == len(EVENTS)
    objects = [json.loads(line) for line in lines]
    assert [o["event"] for o in objects] == [type(e).__name__ for e in EVENTS]
    assert objects[0] == {
        "event": "StepStarted", "step_id": 1, "stage": "stage-0", "index": 1, "total": 2,
        "line": 1, "text": "FROM busybox",
    }  # fmt: skip
    assert objects[2]["layer"] is None and objects[2]["cached"] is True
    assert objects[4]["layer"] == str(LAYER) and objects[4]["seconds"] == 1.25
    assert objects[5]["error"] == "exit code 1\nmore"
    assert objects[6] == {
        "event": "CacheTransfer", "direction": "import", "ref": "dir", "status": "none",
        "records": 0, "reason": "",
    }  # fmt: skip
    assert objects[7]["tags"] == ["app:1", "app:latest"]
    assert objects[7]["digest"] == str(LAYER)


def test_rawjson_is_a_mode() -> None:
    assert "rawjson" in MODES
    assert isinstance(make_progress("rawjson"), RawJsonProgress)
