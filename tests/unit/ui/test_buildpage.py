"""A build's HTML page (ui/buildpage.py) from a --report's JSON and from a history record."""

from __future__ import annotations

import re
from typing import Any

from layerbuild.ui.buildpage import build_status, render_build_page
from tests.support.pages import elements, external_loads, page_text

HOSTILE = '<script>document.title="owned"</script><img src=http://127.0.0.1:9/x onerror=alert(1)>'


def _step(stage: str, index: int, instruction: str, **kw: Any) -> dict[str, Any]:
    step = {"stage": stage, "index": index, "line": index, "instruction": instruction,
            "cache": "miss", "key": None, "reason": "", "seconds": 1.0, "layer": None}  # fmt: skip
    return step | kw


def _report(steps: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"image": "sha256:" + "ab" * 32, "seconds": 4.0, "steps": steps} | kw


PARALLEL = _report([
    _step("deps", 1, "FROM busybox AS deps", cache="hit", seconds=0.01, start=0.0),
    _step("assets", 1, "FROM busybox AS assets", cache="hit", seconds=0.01, start=0.0),
    _step("deps", 2, "RUN sleep 2", seconds=2.0, start=0.02, layer="sha256:" + "1" * 64,
          reason="no previous build of this step"),
    _step("assets", 2, "RUN sleep 1", seconds=1.0, start=0.03, layer="sha256:" + "2" * 64,
          reason="parent step missed"),
    _step("final", 1, "FROM busybox", cache="hit", seconds=0.0, start=2.1),
    _step("final", 2, "COPY --from=deps /d /d", seconds=0.5, start=2.2),
])  # fmt: skip


def _bars(page: str) -> list[tuple[float, float]]:
    """(left, right) in percent of each step's bar, in page order."""
    out = []
    for tag, attrs in elements(page):
        if tag == "div" and "bar" in (attrs.get("class") or "").split():
            m = re.fullmatch(r"left:([\d.]+)%;width:([\d.]+)%", attrs.get("style") or "")
            assert m, attrs
            left, width = float(m[1]), float(m[2])
            out.append((left, left + width))
    return out


def test_every_step_is_on_the_page_with_its_verdict_and_reason() -> None:
    page = render_build_page(PARALLEL, title="app:1")
    text = page_text(page)
    for step in PARALLEL["steps"]:
        assert step["instruction"] in text
    tips = [a["title"] for t, a in elements(page) if t == "div" and "data-tip" in a]
    assert len(tips) == len(PARALLEL["steps"])
    assert tips[2] == "miss, started at 0.02s, took 2.00s: no previous build of this step"
    assert tips[0].startswith("hit, ") and ":" not in tips[0].split("took")[1]
    assert "Build: app:1" in text and "2/6" not in text and "3/6" in text  # cached/total


def test_stages_built_at_once_overlap_on_the_timeline() -> None:
    bars = _bars(render_build_page(PARALLEL))
    assert len(bars) == len(PARALLEL["steps"])
    deps, assets, final = bars[2], bars[3], bars[5]
    assert deps[0] < assets[1] and assets[0] < deps[1]  # the two RUNs ran at the same time
    assert final[0] >= deps[1]  # the last stage began after them


def test_a_report_without_start_times_is_drawn_one_step_after_the_other() -> None:
    steps = [{k: v for k, v in s.items() if k != "start"} for s in PARALLEL["steps"]]
    page = render_build_page(_report(steps))
    bars = _bars(page)
    for before, after in zip(bars, bars[1:], strict=False):
        assert after[0] >= before[1] - 0.01
    assert "no start times" in page_text(page)


def test_user_text_is_escaped_everywhere() -> None:
    report = _report(
        [_step(HOSTILE, 1, f"RUN echo '{HOSTILE}'", reason=f'"{HOSTILE}" changed',
               layer="sha256:" + "3" * 64, layer_size=10,
               files={"written": 1, "removed": 0, "bytes": 3, "paths": [f"+ /{HOSTILE}"]})],
        tags=[HOSTILE], error=HOSTILE, dockerfile=HOSTILE,
        warnings=[{"rule": HOSTILE, "message": HOSTILE, "line": 1, "url": HOSTILE}],
    )  # fmt: skip
    page = render_build_page(report)
    assert HOSTILE not in page
    assert [t for t, _ in elements(page)].count("script") == 1  # the page's own
    assert [t for t, _ in elements(page)].count("img") == 0
    assert page_text(page).count(HOSTILE) >= 6  # shown as text: in the title, steps, files...
    assert external_loads(page) == []


def test_the_page_loads_nothing_even_when_the_build_names_urls() -> None:
    report = _report([_step("s", 2, "ADD https://example.com/app.tar.gz /app",
                            reason="https://example.com/app.tar.gz changed")])  # fmt: skip
    page = render_build_page(report)
    assert external_loads(page) == []
    assert "https://example.com/app.tar.gz" in page_text(page)
    csp = next(a for t, a in elements(page) if t == "meta" and a.get("http-equiv"))
    assert (csp.get("content") or "").startswith("default-src 'none'")


def test_layer_sizes_and_file_summaries_of_a_history_record() -> None:
    steps = [
        _step("s", 2, "RUN make", layer="sha256:" + "4" * 64, layer_size=2_500_000,
              files={"written": 3, "added": 3, "changed": 0, "removed": 1, "bytes": 2_400_000,
                     "paths": ["+ /app/bin", "- /tmp/x"]}),
        _step("s", 3, "COPY . .", layer="sha256:" + "5" * 64, layer_size=1_000),
    ]  # fmt: skip
    record = _report(steps, id="b7c1", status="failed", error="step 4: exit code 2",
                     tags=["app:2"], started=1_796_670_000.0)  # fmt: skip
    text = page_text(render_build_page(record))
    assert "2.5MB" in text and "1.0kB" in text
    assert "3 written, 1 removed, 2.4MB" in text and "/app/bin" in text
    assert "Build: app:2" in text and "b7c1" in text and "failed" in text
    assert "step 4: exit code 2" in text and "UTC" in text


def test_status_from_a_report() -> None:
    assert build_status(_report([])) == "completed"
    assert build_status(_report([_step("s", 1, "RUN x", cache="error")])) == "failed"
    assert build_status({"steps": [], "image": None}) == "incomplete"
    assert build_status({"dry_run": True, "steps": []}) == "dry run"
    assert build_status({"status": "interrupted", "image": None}) == "interrupted"


def test_an_empty_report_still_makes_a_page() -> None:
    page = render_build_page({})
    assert page.startswith("<!DOCTYPE html>") and external_loads(page) == []
    assert "(no image)" in page_text(page)


def test_a_report_without_layer_sizes_says_so_instead_of_a_size_column() -> None:
    page = render_build_page(PARALLEL)
    text = page_text(page)
    assert "holds no layer sizes" in text and "linesteplayer2" in text  # no size column
    assert [t for t, a in elements(page) if "sizebar" in (a.get("class") or "")] == []
