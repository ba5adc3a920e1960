from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.errors import InvalidReference, StoreError
from layerbuild.image import mediatypes as mt
from layerbuild.image.descriptor import Descriptor
from layerbuild.store import Store
from layerbuild.store.refs import Refs


def desc(n: int) -> Descriptor:
    return Descriptor(mt.OCI_MANIFEST, sha256_bytes(str(n).encode()), 100 + n)


def test_set_get_list_delete(tmp_path: Path) -> None:
    refs = Refs(tmp_path)
    assert refs.list() == {} and refs.get("app") is None
    assert refs.set("app", desc(1)) == "app:latest"
    assert refs.set("docker.io/library/app:2", desc(2)) == "app:2"
    got = refs.get("app:latest")
    assert got is not None and got.digest == desc(1).digest
    assert got.annotation(mt.ANNOTATION_REF_NAME) == "app:latest"
    assert got.annotation(mt.ANNOTATION_IMAGE_NAME) == "docker.io/library/app:latest"
    assert list(refs.list()) == ["app:2", "app:latest"]
    refs.set("app", desc(3))  # retag replaces
    assert [d.digest for d in refs.list().values()] == [desc(2).digest, desc(3).digest]
    assert refs.delete("app") is True
    assert refs.delete("app") is False
    assert list(refs.list()) == ["app:2"]


def test_index_json_is_an_oci_index(tmp_path: Path) -> None:
    refs = Refs(tmp_path)
    refs.set("localhost:5000/x", desc(1))
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["schemaVersion"] == 2 and index["mediaType"] == mt.OCI_INDEX
    (entry,) = index["manifests"]
    assert entry["digest"] == desc(1).digest
    assert entry["annotations"] == {
        mt.ANNOTATION_REF_NAME: "localhost:5000/x:latest",
        mt.ANNOTATION_IMAGE_NAME: "localhost:5000/x:latest",
    }
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_unnamed_entries_are_kept(tmp_path: Path) -> None:
    foreign = {"mediaType": mt.OCI_MANIFEST, "digest": desc(9).digest, "size": 5}
    (tmp_path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [foreign]}))
    refs = Refs(tmp_path)
    refs.set("a", desc(1))
    assert [d.digest for d in refs.unnamed()] == [desc(9).digest]
    assert list(refs.list()) == ["a:latest"]


def test_invalid_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidReference):
        Refs(tmp_path).set("Bad Name", desc(1))


def test_corrupt_index(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(StoreError, match="not valid JSON"):
        Refs(tmp_path).list()


def _tag_many(root: str, who: int) -> None:
    refs = Refs(Path(root))
    for i in range(20):
        refs.set(f"w{who}:{i}", desc(who * 100 + i))


def test_concurrent_updates_lose_nothing(tmp_path: Path) -> None:
    Store.open(tmp_path)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_tag_many, args=(str(tmp_path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 4
    assert len(Refs(tmp_path).list()) == 80


def test_killed_writer_never_leaves_half_index(tmp_path: Path) -> None:
    """A reader always sees a complete index.json while writers are killed mid-update."""
    import signal
    import time

    Store.open(tmp_path)
    ctx = multiprocessing.get_context("fork")
    for round_ in range(5):
        p = ctx.Process(target=_tag_many, args=(str(tmp_path), round_))
        p.start()
        deadline = time.monotonic() + 0.05 * (round_ + 1)
        while time.monotonic() < deadline:
            json.loads((tmp_path / "index.json").read_bytes())  # never partial
        assert p.pid is not None
        os.kill(p.pid, signal.SIGKILL)
        p.join(10)
    refs = Refs(tmp_path)
    assert all(name.startswith("w") for name in refs.list())
    refs.set("after", desc(1))  # the lock of a killed writer is gone
    assert refs.get("after") is not None
