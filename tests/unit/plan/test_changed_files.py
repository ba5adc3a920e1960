"""changed_files: the paths two per-file summaries of a COPY disagree on, in path order."""

from __future__ import annotations

from layerbuild.plan.keys import changed_files


def test_added_removed_and_changed_paths_come_in_path_order() -> None:
    old = {"a": "sha256:1 0644 0:0", "b": "dir 0755 0:0", "b/c": "x", "z": "same"}
    new = {"a": "sha256:2 0644 0:0", "b": "dir 0755 0:0", "aa": "y", "z": "same"}
    assert changed_files(old, new) == ["/a changed", "/aa added", "/b/c removed"]


def test_equal_summaries_have_no_changes() -> None:
    files = {f"d/f{i}": f"sha256:{i} 0644 0:0" for i in range(1000)}
    assert changed_files(files, dict(files)) == []
    assert changed_files({}, {}) == []
    assert changed_files({}, {"x": "dir"}) == ["/x added"]
    assert changed_files({"x": "dir"}, {}) == ["/x removed"]
