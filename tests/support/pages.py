"""Read layerbuild's HTML pages as a browser and as a parser would.

Name: external_loads, page_text, Loaded, load_in_chromium.
Scope: tests/unit/ui (the pages' text) and tests/integration/test_html_pages.py (the pages in
       a real browser).
Depends: the standard library; load_in_chromium needs Debian's `chromium` (a missing browser
       fails the test: CI installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = "chromium"
BROWSER_TIMEOUT = 120

# what makes a browser fetch: these attributes (unless a fragment or inline data), these
# elements at all, and in the page's own style and script, these words
_LOADING_ATTRS = {"src", "href", "action", "formaction", "poster", "srcset", "data", "background"}
_LOADING_TAGS = {"link", "iframe", "frame", "object", "embed", "base", "audio", "video"}
_LOADING_CODE = re.compile(
    r"url\(|@import|@font-face|https?://|fetch\(|XMLHttpRequest|WebSocket|EventSource"
    r"|sendBeacon|import\(|\.src\s*=",
    re.IGNORECASE,
)


def external_loads(page: str) -> list[str]:
    """What in `page` would load something (a self-contained page has none): attributes and
    elements as the browser parses them, and the code of its <style> and <script> elements
    (the user's text in the page is text, whatever it says)."""
    parser = _Text()
    parser.feed(page)
    found = [f"<{tag}>" for tag, _ in parser.elements if tag in _LOADING_TAGS]
    for tag, attrs in parser.elements:
        for name, value in attrs.items():
            if name in _LOADING_ATTRS and not (value or "#").startswith(("#", "data:")):
                found.append(f"<{tag} {name}={value}>")
            if name == "style" and _LOADING_CODE.search(value or ""):
                found.append(f"<{tag} style={value}>")
    found += [m.group(0) for code in parser.code for m in _LOADING_CODE.finditer(code)]
    return found


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.code: list[str] = []  # the text of <style> and <script> elements
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        (self.code if self._skip else self.parts).append(data)


def page_text(page: str) -> str:
    """The text a reader sees (entities decoded; scripts and styles left out)."""
    parser = _Text()
    parser.feed(page)
    return "".join(parser.parts)


def elements(page: str) -> list[tuple[str, dict[str, str | None]]]:
    """Every element's tag and attributes (decoded), in document order."""
    parser = _Text()
    parser.feed(page)
    return parser.elements


# Put first in the page's <head>: records script errors and blocked loads (the page's own
# Content-Security-Policy reports them) on <html>, where --dump-dom shows them.
_RECORDER = (
    "<script>(function(){var root=document.documentElement;"
    "function note(what){root.setAttribute('data-errors',"
    "(root.getAttribute('data-errors')||'')+what+';');}"
    "window.addEventListener('error',function(e){note('error: '+e.message);});"
    "document.addEventListener('securitypolicyviolation',"
    "function(e){note('blocked: '+e.blockedURI);});})();</script>"
)


@dataclass(frozen=True)
class Loaded:
    dom: str  # the DOM after the page's script ran, as chromium serializes it
    errors: str  # what the recorder noted ("" when nothing went wrong)
    ready: str | None  # <body data-ready>: set by the page's script as its last act


def load_in_chromium(page: Path) -> Loaded:
    """Open a copy of `page` (with the error recorder) in headless chromium and return the
    DOM it ends with."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is not installed (apt-get install chromium)")
    text = page.read_text(encoding="utf-8")
    head = text.index("<head>") + len("<head>")
    with tempfile.TemporaryDirectory(prefix="chromium-") as tmp:
        copy = Path(tmp, "page.html")
        copy.write_text(text[:head] + _RECORDER + text[head:], encoding="utf-8")
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={tmp}/profile", "--enable-logging=stderr", "--v=0",
             "--dump-dom", copy.as_uri()],
            capture_output=True, text=True, timeout=BROWSER_TIMEOUT, check=False,
        )  # fmt: skip
    if proc.returncode != 0 or "<html" not in proc.stdout:
        pytest.fail(f"chromium exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    root = next(attrs for tag, attrs in elements(proc.stdout) if tag == "html")
    body = next(attrs for tag, attrs in elements(proc.stdout) if tag == "body")
    console = [line for line in proc.stderr.splitlines() if "Uncaught" in line]
    errors = (root.get("data-errors") or "") + "".join(console)
    return Loaded(proc.stdout, errors, body.get("data-ready"))
