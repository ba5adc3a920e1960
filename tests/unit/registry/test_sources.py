from __future__ import annotations

from pathlib import Path

from layerbuild.digest import sha256_bytes
from layerbuild.registry.sources import BlobSources


def test_record_and_query_per_registry(tmp_path: Path) -> None:
    sources = BlobSources(tmp_path / "sources")
    a, b = sha256_bytes(b"a"), sha256_bytes(b"b")
    assert sources.repositories(a, "reg:5000") == []
    sources.record([a, b], "reg:5000", "team/base")
    sources.record([a], "reg:5000", "team/app")
    sources.record([a], "reg:5000", "team/base")  # duplicate: ignored
    sources.record([a], "other.example", "x/y")
    assert sources.repositories(a, "reg:5000") == ["team/app", "team/base"]
    assert sources.repositories(b, "reg:5000") == ["team/base"]
    assert sources.repositories(a, "other.example") == ["x/y"]
    assert (tmp_path / "sources" / a.hex).read_text().count("reg:5000/team/base") == 1
