"""store/buildhistory: record files, retention, ids by prefix and ^N."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from layerbuild.errors import LayerbuildError
from layerbuild.store.buildhistory import (
    BuildHistory,
    Kept,
    decode,
    encode,
    status_of,
    to_drop,
)


def test_records_round_trip_and_foreign_files_are_not_records() -> None:
    record = {"id": "abc", "status": "completed", "steps": []}
    assert decode(encode(record)) == {"format": 1, **record}
    assert decode(b'{"id": "abc"}') is None  # no format
    assert decode(b'{"format": 1, "id": "a"') is None  # torn
    assert encode(record).count(b"\n") == 1


def test_retention_keeps_the_newest_within_both_bounds() -> None:
    files = [Kept(f"b{n}", f"{n:012x}-b{n}.json", 100) for n in range(10)]
    assert sorted(to_drop(files, 7, 10_000)) == ["b0", "b1", "b2"]
    assert sorted(to_drop(files, 100, 450)) == ["b0", "b1", "b2", "b3", "b4", "b5"]
    assert to_drop([Kept("big", "1-big.json", 10**9)], 1, 10) == []  # the newest always stays


def test_status_of_a_running_record_whose_process_is_gone() -> None:
    assert status_of({"status": "running", "pid": os.getpid()}) == "running"
    assert status_of({"status": "running", "pid": 2**22 + 12345}) == "killed"
    assert status_of({"status": "failed", "pid": 0}) == "failed"


def _history(tmp_path: Path, max_builds: int = 200) -> BuildHistory:
    history = BuildHistory(tmp_path / "builds", max_builds=max_builds)
    for n, (build_id, dockerfile) in enumerate(
        [("aa11", "/a/Dockerfile"), ("aa22", "/b/Dockerfile"), ("bb33", "/a/Dockerfile")]
    ):
        history.write({"id": build_id, "started": float(n), "dockerfile": dockerfile})
    return history


def test_ids_by_unique_prefix_and_caret(tmp_path: Path) -> None:
    history = _history(tmp_path)
    assert history.resolve("bb", None)["id"] == "bb33"
    assert history.resolve("^0", "/a/Dockerfile")["id"] == "bb33"
    assert history.resolve("^1", "/a/Dockerfile")["id"] == "aa11"
    assert history.resolve("^0", "/b/Dockerfile")["id"] == "aa22"
    with pytest.raises(LayerbuildError, match="names 2 builds"):
        history.resolve("aa", None)
    with pytest.raises(LayerbuildError, match="no build 'cc'"):
        history.resolve("cc", None)
    with pytest.raises(LayerbuildError, match="holds 1 build"):
        history.resolve("^1", "/b/Dockerfile")
    assert history.find("cc", None) is None


def test_retain_removes_the_oldest_files_and_clean_the_dead_writers(tmp_path: Path) -> None:
    history = _history(tmp_path, max_builds=2)
    dead = history.directory / ".tmp-999999999-x"
    dead.write_text("{")
    assert history.retain() == ["aa11"]
    history.clean()
    names = sorted(p.name for p in history.directory.iterdir())
    assert names == ["0000000003e8-aa22.json", "0000000007d0-bb33.json"]
    assert [r["id"] for r in history.records()] == ["bb33", "aa22"]
    history.remove("aa22")
    assert history.read("aa22") is None and history.read("bb33") is not None


def test_the_byte_bound_when_full_or_when_the_newest_id_says(tmp_path: Path) -> None:
    history = BuildHistory(tmp_path / "builds", max_bytes=1)
    for n in range(9):
        history.write({"id": f"ff{n}", "started": float(n)})
    assert history.retain() == []  # an id from ff: the sizes are not read
    assert len(history.retain(full=True)) == 8
    for n in range(9, 18):
        history.write({"id": f"ff{n}", "started": float(n)})
    history.write({"id": "0a", "started": 99.0})  # about one id in ten starts so
    assert len(history.retain()) == 10
    assert [r["id"] for r in history.records()] == ["0a"]
