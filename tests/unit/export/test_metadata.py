"""--metadata-file: buildx's keys, and the file written whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.engine.options import BuildResult
from layerbuild.errors import ExportError
from layerbuild.export.metadata import build_metadata, new_build_ref, write_build_file
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Descriptor, Platform


def _result() -> BuildResult:
    config = ImageConfig()
    desc = Descriptor(mt.OCI_MANIFEST, sha256_bytes(b"m"), 10, platform=Platform())
    return BuildResult(desc, config, ("app:1", "app:latest"), 1.0)


def test_keys_and_shapes() -> None:
    result = _result()
    exported = Descriptor(mt.OCI_MANIFEST, sha256_bytes(b"other"), 12, platform=Platform())
    data = json.loads(build_metadata(result, exported, ref="abc"))
    assert data == {
        "buildx.build.ref": "layerbuild/local/abc",
        "containerimage.config.digest": str(result.config.digest),
        "containerimage.descriptor": {
            "mediaType": mt.OCI_MANIFEST,
            "digest": str(exported.digest),
            "size": 12,
            "platform": {"architecture": "amd64", "os": "linux"},
        },
        "containerimage.digest": str(exported.digest),
        "image.name": "app:1,app:latest",
    }


def test_build_refs_are_new_each_time_and_shaped_as_buildx_writes_them() -> None:
    refs = {new_build_ref() for _ in range(20)}
    assert len(refs) == 20
    assert all(len(r) == 25 and r.isalnum() and r == r.lower() for r in refs)


def test_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    path.write_text("old")
    write_build_file(path, "new\n", "--metadata-file")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json"]


def test_unwritable_is_an_export_error_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="cannot write --metadata-file .*no/such"):
        write_build_file(tmp_path / "no/such/meta.json", "x", "--metadata-file")
