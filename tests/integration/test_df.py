"""`layerbuild df`: per-image shared and unique bytes, the store's parts adding up to `du` of
the store, and the reclaimable bytes it predicts equal to what prune and cache prune free."""

from __future__ import annotations

import gzip
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Layerbuild, make_context

pytestmark = [pytest.mark.root, pytest.mark.overlay]

# two images over busybox sharing their first RUN layer, each with a layer of its own
SHARED_STEP = "RUN head -c 300000 /dev/urandom > /shared.bin"


def _dockerfile(own: str) -> str:
    return f"FROM busybox\n{SHARED_STEP}\nRUN echo {own} > /own.txt\n"


def _df(lb: Layerbuild, *names: str) -> dict[str, Any]:
    result = json.loads(lb.ok("df", "--format", "json", *names).stdout)
    assert isinstance(result, dict)
    return result


def _du_bytes(store: Path) -> int:
    """`du --apparent-size` of the store less its directories' own sizes (df does not count
    directories: their size is the file system's, not the store's)."""
    du = subprocess.run(
        ["du", "-s", "--bytes", str(store)], capture_output=True, text=True, check=True
    )
    entries = [os.lstat(os.path.join(path, d)) for path, dirs, _ in os.walk(store) for d in dirs]
    directories = sum(st.st_size for st in entries if stat.S_ISDIR(st.st_mode))
    return int(du.stdout.split()[0]) - directories - os.lstat(store).st_size


def _build_two(lb: Layerbuild, tmp_path: Path) -> None:
    for name in ("a", "b"):
        ctx = make_context(tmp_path, {"Dockerfile": _dockerfile(name)}, name=f"ctx-{name}")
        lb.build(ctx, "-t", f"{name}:1")


def _image(df: dict[str, Any], name: str) -> dict[str, Any]:
    found = [i for i in df["images"] if name in i["names"]]
    assert len(found) == 1, df["images"]
    return found[0]


def test_parts_add_up_to_du_and_sharing_is_counted(lb: Layerbuild, tmp_path: Path) -> None:
    _build_two(lb, tmp_path)
    df = _df(lb)

    assert sum(df["store"].values()) == df["total"] == _du_bytes(lb.store)
    assert {tuple(i["names"]) for i in df["images"]} == {("a:1",), ("b:1",), ("busybox:latest",)}
    base = lb.inspect("busybox:latest")["Layers"][0]
    a_layers = lb.inspect("a:1")["Layers"]
    assert a_layers[0] == base and a_layers[1] == lb.inspect("b:1")["Layers"][1]
    shared = {s["digest"]: s for s in df["shared_layers"]}
    assert set(shared) == {base, a_layers[1]}
    assert (shared[base]["images"], shared[a_layers[1]]["images"]) == (3, 2)
    # the uncompressed size is the layer's tar, as Python's gzip reads it back
    blob = lb.store / "blobs" / "sha256" / a_layers[1].split(":")[1]
    assert shared[a_layers[1]]["uncompressed"] == len(gzip.decompress(blob.read_bytes()))
    assert shared[a_layers[1]]["compressed"] == blob.stat().st_size

    a = _image(df, "a:1")
    assert a["layers"] == 3
    both = shared[base]["compressed"] + shared[a_layers[1]]["compressed"]
    assert a["shared"]["compressed"] == both
    assert a["unique"]["compressed"] == a["total"]["compressed"] - a["shared"]["compressed"]
    own = lb.store / "blobs" / "sha256" / a_layers[2].split(":")[1]
    assert a["unique"]["compressed"] > own.stat().st_size  # its layer, config and manifest
    # every image blob once, and nothing but image blobs and cache in a fresh store
    assert df["images_total"]["compressed"] == df["store"]["image_blobs"]
    assert df["store"]["unused_blobs"] == df["store"]["cache_blobs"] == 0
    assert df["store"]["layer_snapshots"] > 0 and df["store"]["cache_records"] > 0

    only_a = _df(lb, "a:1")
    assert [i["names"] for i in only_a["images"]] == [["a:1"]]
    assert _image(only_a, "a:1") == a  # sharing still counts the other images


def test_prune_and_cache_prune_free_what_df_predicts(lb: Layerbuild, tmp_path: Path) -> None:
    _build_two(lb, tmp_path)
    lb.ok("rmi", "a:1")
    lb.ok("rmi", "busybox:latest")
    before = _df(lb)
    # a's config and manifest: its layers are still b's or the build cache's
    assert before["store"]["unused_blobs"] > 0
    assert before["store"]["cache_blobs"] > 0
    assert before["reclaimable"]["prune"] >= before["store"]["unused_blobs"]

    out = lb.ok("prune").stdout
    assert f"({before['reclaimable']['prune']} bytes)" in out
    after = _df(lb)
    assert after["total"] == _du_bytes(lb.store)
    assert after["store"]["unused_blobs"] == 0 and after["reclaimable"]["prune"] == 0
    parts = ("unused_blobs", "snapshots", "layer_snapshots")  # the parts gc frees
    gone = sum(before["store"][k] - after["store"][k] for k in parts)
    assert gone == before["reclaimable"]["prune"]

    predicted = after["reclaimable"]["cache_prune_all"]
    assert predicted >= after["store"]["cache_blobs"] > 0
    out = lb.ok("cache", "prune", "--all").stdout
    assert f"({predicted} bytes)" in out
    last = _df(lb)
    assert last["store"]["cache_blobs"] == 0 and last["reclaimable"]["cache_prune_all"] == 0
    assert last["total"] == _du_bytes(lb.store)


def test_table_lists_images_parts_and_reclaimable(lb: Layerbuild, tmp_path: Path) -> None:
    _build_two(lb, tmp_path)
    out = lb.ok("df").stdout
    df = _df(lb)
    assert "Layers shared between images:" in out
    for name in ("a:1", "b:1", "busybox:latest"):
        assert name in out
    assert f"{'total':<36}" in out and str(df["total"]) in out
    assert "layerbuild cache prune --all" in out


def test_unknown_image_is_an_error_naming_it(lb: Layerbuild) -> None:
    proc = lb("df", "nosuch:1")
    assert proc.returncode != 0
    assert "nosuch" in proc.stderr
