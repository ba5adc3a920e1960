"""The HTML pages in a real browser (Debian's headless chromium): a real build's page (`builds
show ID --html`, from the build's history record, by ui/buildpage.py) and `diff A B --html`.
Each page must load without a script error or a blocked load, with its script run to the end,
and show every step."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from layerbuild.ui.buildpage import render_build_page
from tests.support.cli import Layerbuild, make_context
from tests.support.pages import Loaded, elements, external_loads, load_in_chromium, page_text

# two stages that each sleep: with --jobs 2 they run at once, and their bars must overlap
TWO_STAGES = """\
FROM busybox AS deps
RUN sleep 1 && echo "<b>deps</b> & more" > /deps
FROM busybox AS assets
COPY conf /conf
RUN sleep 1 && cat /conf > /assets
FROM busybox
COPY --from=deps /deps /app/deps
COPY --from=assets /assets /app/assets
RUN od -An -N8 -tx8 /dev/urandom > /app/stamp
CMD ["sh"]
"""


def _check_loaded(loaded: Loaded) -> str:
    """The page's text once its script ran; fails on any error the page met."""
    assert loaded.errors == ""
    assert loaded.ready is not None and int(loaded.ready) > 0  # the script ran to its end
    assert external_loads(loaded.dom) == []
    return page_text(loaded.dom)


def _bar(dom: str, label: str) -> tuple[float, float]:
    """(left, right) in percent of the bar on the row whose label holds `label`."""
    rows = re.findall(
        r'<div class="label mono">(.*?)</div><div class="track">'
        r'<div class="bar [a-z]+" style="left:([\d.]+)%;width:([\d.]+)%',
        dom,
    )
    (left, width) = next((float(x), float(w)) for text, x, w in rows if label in text)
    return left, left + width


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.browser
def test_a_real_build_s_page_shows_every_step_and_parallel_stages_overlap(
    lb: Layerbuild, tmp_path: Path
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": TWO_STAGES, "conf": "one\n"})
    report_file = tmp_path / "report.json"
    lb.build(ctx, "--jobs", "2", "-t", "page:1", "--report", report_file)
    report = json.loads(report_file.read_text())
    assert all(isinstance(s.get("start"), float) for s in report["steps"])
    page = tmp_path / "build.html"
    shown = lb("builds", "show", "^0", "--html", page, cwd=ctx)  # the history's record of it
    assert shown.returncode == 0, shown.stderr
    assert "page:1" in page.read_text()

    loaded = load_in_chromium(page)
    text = _check_loaded(loaded)
    for step in report["steps"]:
        assert step["instruction"] in text, step
    assert int(loaded.ready or 0) == len(report["steps"])  # a tooltip on every step
    deps, assets = _bar(loaded.dom, "RUN sleep 1 &amp;&amp; echo"), _bar(loaded.dom, "cat")
    assert deps[0] < assets[1] and assets[0] < deps[1]


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.browser
def test_diff_html_writes_a_page_of_the_comparison(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": TWO_STAGES, "conf": "one\n"})
    lb.build(ctx, "-t", "page:1")
    (ctx / "conf").write_text("two, longer\n")
    lb.build(ctx, "-t", "page:2")
    page = tmp_path / "diff.html"
    proc = lb("diff", "page:1", "page:2", "--format", "json", "--html", page)
    assert proc.returncode == 1, proc.stderr  # still diff(1)'s exit status, and its JSON
    result = json.loads(proc.stdout)

    text = _check_loaded(load_in_chromium(page))
    assert "Comparison: page:1 vs page:2" in text
    for pair in result["layers"]:
        side = pair["a"] or pair["b"]
        assert side["created_by"] in text and pair["verdict"] in text
    changed = [f["path"] for f in result["files"] if f["status"] != "mtime-only"]
    assert "/app/assets" in changed and "/app/stamp" in changed
    for path in changed:
        assert path in text


@pytest.mark.browser
def test_the_browser_runs_none_of_the_user_s_text(tmp_path: Path) -> None:
    hostile = (
        '<script>document.title="owned"</script><img src=x onerror="document.title=1">'
        "<style>body{display:none}</style>"
    )
    report = {
        "image": None,
        "seconds": 1.0,
        "steps": [{"stage": hostile, "index": 1, "line": 1, "instruction": f"RUN {hostile}",
                   "cache": "error", "reason": hostile, "seconds": 1.0, "start": 0.0}],
        "warnings": [{"rule": hostile, "message": hostile, "line": 1, "url": hostile}],
    }  # fmt: skip
    page = tmp_path / "hostile.html"
    page.write_text(render_build_page(report, title=hostile), encoding="utf-8")
    loaded = load_in_chromium(page)
    text = _check_loaded(loaded)
    assert f"RUN {hostile}" in text
    tags = [tag for tag, _ in elements(loaded.dom)]
    assert "img" not in tags and tags.count("style") == 1
    title = re.search(r"<title>(.*?)</title>", loaded.dom, re.S)  # "owned" had a script run
    assert title is not None and html.unescape(title.group(1)) == f"layerbuild build: {hostile}"
