"""--cache-to that fails: a warning with ignore-error=true, else an error that says the image
is fine (registry/remotecache/exporter.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerbuild.engine.events import CacheTransfer
from layerbuild.errors import ExportError
from layerbuild.registry.remotecache.exporter import export_caches
from layerbuild.registry.remotecache.spec import CacheSpec, parse_cache_spec
from layerbuild.store import Store


def _export(store: Store, spec: CacheSpec) -> tuple[list[str], list[CacheTransfer]]:
    notes: list[str] = []
    outcomes: list[CacheTransfer] = []
    steps = [{"stage": "s", "key": "sha256:" + "2" * 64, "parent": "sha256:" + "3" * 64}]
    export_caches(store, [spec], steps, "s", [], None, notes.append, outcomes.append)
    return notes, outcomes


def test_a_failed_export_with_ignore_error_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    dest = tmp_path / "file" / "cache"
    spec = parse_cache_spec(f"type=local,dest={dest},ignore-error=true", "to")
    notes, outcomes = _export(Store.open(tmp_path / "store"), spec)
    assert [n for n in notes if n.startswith("warning:")] == [
        next(n for n in notes if n.startswith(f"warning: cache export to {dest} failed: "))
    ]
    assert [(o.direction, o.status) for o in outcomes] == [("export", "failed")]


def test_a_failed_export_without_ignore_error_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    spec = parse_cache_spec(f"type=local,dest={tmp_path / 'file' / 'cache'}", "to")
    outcomes: list[CacheTransfer] = []
    store = Store.open(tmp_path / "s")
    with pytest.raises(ExportError, match=r"cache export to .* failed: .*Not a directory") as e:
        export_caches(store, [spec], [], "s", [], None, print, outcomes.append)
    assert e.value.exit_code == 7 and "the image was built and tagged" in str(e.value.hint)
    assert [o.status for o in outcomes] == ["failed"]
