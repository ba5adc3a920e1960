"""`diff A B --html`'s page (ui/diffpage.py) from the JSON `diff --format json` prints."""

from __future__ import annotations

from typing import Any

from layerbuild.ui import diffpage
from layerbuild.ui.diffpage import render_diff_page
from tests.support.pages import elements, external_loads, page_text

HOSTILE = "</td><script>alert(1)</script><a href='https://evil.example/'>x</a>"


def _side(layer: int, step: int, created_by: str) -> dict[str, Any]:
    return {"layer": layer, "diff_id": "sha256:" + "d" * 64, "digest": "sha256:" + "e" * 64,
            "step": step, "created_by": created_by}  # fmt: skip


def _file(path: str, status: str, size: int) -> dict[str, Any]:
    what = ["mtime"] if status == "mtime-only" else ["content", "mtime"]
    return {"path": path, "status": status, "what": what, "size": size, "a": None, "b": None}


DIFF: dict[str, Any] = {
    "identical": False,
    "a": {"name": "app:1", "config_digest": "sha256:" + "a" * 64, "layers": 2},
    "b": {"name": "app:2", "config_digest": "sha256:" + "b" * 64, "layers": 2},
    "config": [{"field": "config.Env.MODE", "a": "dev", "b": None}],
    "layers": [
        {"a": _side(1, 1, "FROM busybox"), "b": _side(1, 1, "FROM busybox"),
         "verdict": "same", "reason": "", "files": []},
        {"a": _side(2, 3, "RUN date > /stamp"), "b": _side(2, 3, "RUN date > /stamp"),
         "verdict": "not reproducible", "reason": "the same instruction gave another output",
         "files": [_file("/app", "mtime-only", 0), _file("/small", "changed", 10),
                   _file("/big", "added", 5000)]},
    ],
    "files": [_file("/big", "added", 5000), _file("/small", "changed", 10),
              _file("/app", "mtime-only", 0)],
}  # fmt: skip


def test_config_layers_verdicts_and_files_are_shown() -> None:
    text = page_text(render_diff_page(DIFF))
    assert "Comparison: app:1 vs app:2" in text
    assert "config.Env.MODE" in text and "dev" in text and "(unset)" in text
    assert "step 3 RUN date > /stamp" in text and "not reproducible" in text
    assert "the same instruction gave another output" in text
    assert "config fields1" in text and "layers differing1" in text
    assert "files2 (+1 mtime-only)" in text


def test_files_are_listed_biggest_first_mtime_only_last() -> None:
    page = render_diff_page(DIFF)
    text = page_text(page)
    pair_table = text[text.index("RUN date"):text.index("Files of the final")]
    assert pair_table.index("/big") < pair_table.index("/small") < pair_table.index("/app")
    assert "5.0kB" in pair_table


def test_long_file_lists_are_cut_and_say_so(monkeypatch: Any) -> None:
    monkeypatch.setattr(diffpage, "FILES_SHOWN", 2)
    text = page_text(render_diff_page(DIFF))
    assert "... and 1 more" in text and "/app" not in text.split("Files of the final")[1]


def test_user_text_is_escaped_and_nothing_loads() -> None:
    hostile: dict[str, Any] = DIFF | {
        "a": {"name": HOSTILE, "config_digest": HOSTILE, "layers": 1},
        "config": [{"field": HOSTILE, "a": HOSTILE, "b": {"k": HOSTILE}}],
        "layers": [{"a": _side(1, 1, HOSTILE), "b": None, "verdict": HOSTILE,
                    "reason": HOSTILE, "files": [_file(HOSTILE, "added", 1)]}],
        "files": [_file(HOSTILE, HOSTILE, 1)],
    }  # fmt: skip
    page = render_diff_page(hostile)
    assert HOSTILE not in page
    tags = [t for t, _ in elements(page)]
    assert tags.count("script") == 1 and "a" not in tags
    assert external_loads(page) == []
    assert page_text(page).count(HOSTILE) >= 6


def test_identical_images() -> None:
    same = DIFF | {"identical": True, "config": [], "files": [],
                   "layers": [DIFF["layers"][0]]}  # fmt: skip
    text = page_text(render_diff_page(same))
    assert "identical" in text and "Config" not in text and "Files of the final" not in text
