"""file_digests: the content digests a COPY's per-path summaries name, for its files only."""

from __future__ import annotations

import io

import pytest

from layerbuild.context.hashing import changes_digest
from layerbuild.digest import Digest, sha256_bytes
from layerbuild.engine.layerwriter import file_digests
from layerbuild.image.changes import Change, ChangeKind


def _file(path: str, data: bytes, mode: int = 0o644) -> Change:
    return Change(path, ChangeKind.FILE, mode, size=len(data), content=lambda: io.BytesIO(data))


def test_the_digests_of_the_files_summed_up() -> None:
    changes = [
        Change("d", ChangeKind.DIR, 0o755),
        _file("d/a", b"alpha"),
        _file("d/b", b"", 0o4755),
        Change("d/c", ChangeKind.SYMLINK, link="a"),
    ]
    _, summary = changes_digest(changes, None)
    got = file_digests(changes, summary)
    assert got == {"d/a": sha256_bytes(b"alpha"), "d/b": sha256_bytes(b"")}
    assert all(type(d) is Digest for d in got.values())
    assert file_digests(changes, {}) == {}


def test_a_summary_of_another_form_is_parsed_and_checked() -> None:
    changes = [_file("x", b"1")]
    sha512 = "sha512:" + "ab" * 64
    assert file_digests(changes, {"x": f"{sha512} 0644 0:0"}) == {"x": Digest(sha512)}
    with pytest.raises(ValueError):
        file_digests(changes, {"x": "sha256:short 0644 0:0"})
