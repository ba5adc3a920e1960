"""The shell of layerbuild's HTML pages (a build's, a comparison's): one self-contained file.

Everything is inline (style, script, no fonts or images) and a Content-Security-Policy forbids
any load, so a page opened from a CI artifact or a mail attachment shows the same with no
network and cannot be made to call out. Every piece of data (Dockerfile text, paths, image
names) goes through `esc`: it is the user's, and a `</script>` in a RUN line must stay text.
"""

from __future__ import annotations

import html

from layerbuild.ui.listing import human_size

# inline only: what the page itself carries; nothing else may load
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)

_STYLE = """
:root { --hit: #2e7d32; --miss: #c62828; --other: #757575; --run: #1565c0; --line: #ddd; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .4em; } h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
code, .mono { font-family: ui-monospace, monospace; font-size: 13px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 2px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-weight: 600; background: #f5f5f5; }
td.num, th.num { text-align: right; white-space: nowrap; }
.facts { display: flex; flex-wrap: wrap; gap: .4em 2em; margin: .3em 0 1em; }
.facts .k { color: #666; margin-right: .4em; }
.hit { color: var(--hit); } .miss, .error, .failed { color: var(--miss); }
.badge, .badge.hit, .badge.miss, .badge.error, .badge.failed { display: inline-block;
  padding: 0 6px; border-radius: 3px; color: #fff; font-size: 12px; background: var(--other); }
.badge.hit, .badge.same, .badge.completed { background: var(--hit); }
.badge.miss, .badge.error, .badge.failed, .badge.differs { background: var(--miss); }
.timeline .step { display: grid; grid-template-columns: 34em 1fr 5em; gap: 8px;
  align-items: center; border-bottom: 1px solid #f0f0f0; }
.timeline .label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.timeline .track { position: relative; height: 14px; background: #fafafa; }
.bar { position: absolute; top: 1px; height: 12px; min-width: 2px; border-radius: 2px;
  background: var(--other); }
.bar.hit { background: var(--hit); } .bar.miss { background: var(--miss); }
.bar.error { background: repeating-linear-gradient(45deg, var(--miss) 0 4px, #fff 4px 6px); }
.axis { position: relative; height: 16px; font-size: 11px; color: #777; }
.axis span { position: absolute; transform: translateX(-50%); }
.sizebar { display: inline-block; height: 10px; background: var(--run); vertical-align: middle; }
.legend span { margin-right: 1.2em; } .legend i { display: inline-block; width: 10px;
  height: 10px; margin-right: 4px; vertical-align: middle; }
#tip { position: fixed; display: none; max-width: 40em; background: #222; color: #fff;
  padding: 4px 8px; border-radius: 3px; font-size: 13px; pointer-events: none; z-index: 9; }
.controls { margin: .3em 0; } .controls label { margin-right: 1em; }
details summary { cursor: pointer; } .muted { color: #777; }
"""

# A tooltip for anything with data-tip (the title attribute says the same without script),
# and checkboxes that hide rows by class. The script only adds to a page that is whole without
# it; it marks <body data-ready> last so a test can tell it ran to the end.
_SCRIPT = """
(function () {
  var tip = document.getElementById('tip');
  document.querySelectorAll('[data-tip]').forEach(function (el) {
    el.addEventListener('mousemove', function (e) {
      tip.textContent = el.getAttribute('data-tip');
      tip.style.display = 'block';
      tip.style.left = Math.min(e.clientX + 12, window.innerWidth - 320) + 'px';
      tip.style.top = (e.clientY + 14) + 'px';
    });
    el.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
  });
  document.querySelectorAll('input[data-hide]').forEach(function (box) {
    var cls = box.getAttribute('data-hide');
    function apply() {
      document.querySelectorAll('.' + cls).forEach(function (row) {
        row.style.display = box.checked ? 'none' : '';
      });
    }
    box.addEventListener('change', apply);
    apply();
  });
  var shown = document.querySelectorAll('[data-tip]').length;
  document.body.setAttribute('data-ready', String(shown));
})();
"""


def esc(value: object) -> str:
    """Text of the user's, safe in element content and in double-quoted attributes."""
    return html.escape(str(value), quote=True)


def size(value: object) -> str:
    """A byte count as docker prints it, or "" when unknown."""
    return human_size(value) if isinstance(value, int) and value >= 0 else ""


def document(title: str, body: str) -> str:
    """The whole page: `body` is HTML already escaped by its maker."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"{body}\n<div id=\"tip\"></div>\n<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )


def facts(pairs: list[tuple[str, str]]) -> str:
    """A row of `name value` facts (values already escaped)."""
    items = "".join(f"<div><span class=\"k\">{esc(k)}</span>{v}</div>" for k, v in pairs)
    return f'<div class="facts">{items}</div>'
