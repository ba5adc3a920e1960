"""Exports checked by the real tools: skopeo, umoci, oci-image-tool and podman.

The image is made by the production path (image.compress.pack_layer into a store ingest, then
store.images.write_image). Each tool reads what we wrote, and what skopeo and podman write is
loaded back. A missing tool fails these tests rather than skipping them: CI installs them all.

Notes from the installed versions (Debian: skopeo 1.9, umoci 0.4.7, podman 4.3,
oci-image-tool 1.0.0~rc1):
- oci-image-tool validates layout directories only; on a tarball this version fails with
  "find failed: unable to walk: end of walk" whatever the tar holds, so it is given the directory.
- `podman load` tries the OCI-archive transport before docker-archive, so it reads our Docker
  >= 25 tarball through index.json (and names the image docker.io/library/app:1); the
  manifest.json route is checked with `podman pull docker-archive:FILE` (named localhost/app:1).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from layerbuild.export.docker_tar import write_docker_tar
from layerbuild.export.load import load
from layerbuild.export.oci_layout import write_oci_layout
from layerbuild.export.oci_tar import write_oci_tar
from layerbuild.export.rootfs import write_rootfs
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.compress import pack_layer
from layerbuild.image.config import ContainerConfig, History, ImageConfig
from layerbuild.image.descriptor import Descriptor
from layerbuild.store.images import read_image, write_image
from layerbuild.store.layout import Store
from tests.support.cli import tree

pytestmark = pytest.mark.tools

EXPECTED_TREE = {
    "etc": "dir",
    "etc/os-release": "NAME=layerbuild-test\n",
    "app": "dir",
    "app/main.txt": "hello from layerbuild\n",
    "app/link": "-> main.txt",
    "app/other": "hello from layerbuild\n",
}


def _file(path: str, data: bytes, mode: int = 0o644) -> Change:
    return Change(
        path,
        ChangeKind.FILE,
        mode=mode,
        size=len(data),
        mtime=1_700_000_000,
        content=lambda: io.BytesIO(data),
    )


def _dir(path: str) -> Change:
    return Change(path, ChangeKind.DIR, mode=0o755, mtime=1_700_000_000)


LAYERS: list[list[Change]] = [
    [
        _dir("etc"),
        _file("etc/os-release", b"NAME=layerbuild-test\n"),
        _dir("tmpdir"),
        _file("tmpdir/scratch", b"deleted later\n"),
    ],
    [
        _dir("app"),
        _file("app/main.txt", b"hello from layerbuild\n"),
        Change("app/link", ChangeKind.SYMLINK, mode=0o777, link="main.txt", mtime=1_700_000_000),
        Change("app/other", ChangeKind.HARDLINK, link="app/main.txt", mtime=1_700_000_000),
        Change("tmpdir", ChangeKind.WHITEOUT),
    ],
]


@dataclass(frozen=True)
class Built:
    store: Store
    desc: Descriptor
    config_digest: str
    diff_ids: tuple[str, ...]


@pytest.fixture
def built(tmp_path: Path) -> Built:
    store = Store.open(tmp_path / "store")
    layers = []
    for changes in LAYERS:
        with store.content.ingest() as ingest:
            layer = pack_layer(changes, ingest, compression="gzip")
            ingest.commit(expected=layer.digest)
        layers.append(layer)
    config = ImageConfig(
        config=ContainerConfig(cmd=("/app/main.txt",), env=("PATH=/usr/bin:/bin",)),
        diff_ids=tuple(layer.diff_id for layer in layers),
        history=tuple(History(created_by=f"layer {i}") for i in range(len(layers))),
    )
    desc = write_image(store, config, layers)
    return Built(store, desc, config.digest, tuple(config.diff_ids))


def _run(tool: str, *args: str | os.PathLike[str], cwd: Path | None = None) -> str:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed (apt-get install {tool})")
    proc = subprocess.run(
        [tool, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd
    )
    if proc.returncode != 0:
        pytest.fail(f"{tool} {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def _skopeo_inspect(ref: str) -> dict[str, object]:
    result = json.loads(_run("skopeo", "inspect", ref))
    assert isinstance(result, dict)
    return result


def test_skopeo_reads_the_layout_directory_and_tarball(built: Built, tmp_path: Path) -> None:
    write_oci_layout(built.store, built.desc, tmp_path / "layout", ["app:1"])
    write_oci_tar(built.store, built.desc, tmp_path / "app.tar", ["app:1"])

    for ref in (f"oci:{tmp_path / 'layout'}:1", f"oci-archive:{tmp_path / 'app.tar'}:1"):
        info = _skopeo_inspect(ref)
        assert info["Digest"] == built.desc.digest
        assert info["Env"] == ["PATH=/usr/bin:/bin"]
        raw = json.loads(_run("skopeo", "inspect", "--raw", ref))
        assert raw["config"]["digest"] == built.config_digest


def test_oci_image_tool_validates_the_layout(built: Built, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    write_oci_layout(built.store, built.desc, layout, ["app:1"])
    other = Store.open(tmp_path / "other")
    second = load(other, layout)  # a second image in the same layout, under another tag
    write_oci_layout(other, second[0][1], layout, ["app:2"])

    for tag in ("1", "2"):
        out = _run("oci-image-tool", "validate", "--type", "image", "--ref", f"name={tag}", layout)
        assert "Validation succeeded" in out


def test_umoci_unpacks_the_same_tree_as_our_rootfs_export(built: Built, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    write_oci_layout(built.store, built.desc, layout, ["app:1"])
    _run("umoci", "unpack", "--image", f"{layout}:1", tmp_path / "bundle")
    assert tree(tmp_path / "bundle" / "rootfs") == EXPECTED_TREE

    write_rootfs(built.store, built.desc, tmp_path / "rootfs")
    assert tree(tmp_path / "rootfs") == EXPECTED_TREE
    main = tmp_path / "rootfs" / "app" / "main.txt"
    assert main.stat().st_ino == (tmp_path / "rootfs" / "app" / "other").stat().st_ino


class Podman:
    """podman over a private vfs store, so the host's images stay untouched."""

    def __init__(self, root: Path, runroot: Path) -> None:
        self.base = ["--root", str(root), "--runroot", str(runroot), "--storage-driver", "vfs"]

    def __call__(self, *args: str | os.PathLike[str]) -> str:
        return _run("podman", *self.base, "--events-backend", "none", *args)


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[Podman]:
    # podman refuses a runroot longer than 50 characters, which pytest's tmp_path exceeds
    runroot = Path(tempfile.mkdtemp(prefix="lb-podman-", dir="/tmp"))
    try:
        yield Podman(tmp_path / "podman-root", runroot)
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


def test_podman_loads_the_docker_archive(built: Built, podman: Podman, tmp_path: Path) -> None:
    archive = tmp_path / "docker.tar"
    write_docker_tar(built.store, built.desc, archive, ["app:1"])

    out = podman("load", "-i", archive)
    assert "docker.io/library/app:1" in out
    # the manifest.json route of the same file (containers/image docker-archive transport)
    podman("pull", f"docker-archive:{archive}")
    images = podman("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    names = dict(line.split() for line in images.splitlines())
    assert names["docker.io/library/app:1"] == built.config_digest.removeprefix("sha256:")[:12]
    assert names["localhost/app:1"] == names["docker.io/library/app:1"]
    mount = Path(podman("image", "mount", "localhost/app:1").strip())
    try:
        assert tree(mount) == EXPECTED_TREE
    finally:
        podman("image", "umount", "--all")


def test_skopeo_reads_the_docker_archive(built: Built, tmp_path: Path) -> None:
    archive = tmp_path / "docker.tar"
    write_docker_tar(built.store, built.desc, archive, ["app:1"])
    info = _skopeo_inspect(f"docker-archive:{archive}")
    assert info["Layers"] == list(built.diff_ids)  # the source serves the layers uncompressed
    assert info["RepoTags"] == []  # skopeo lists registry tags here; the archive names docker.io
    raw = json.loads(_run("skopeo", "inspect", "--raw", f"docker-archive:{archive}"))
    assert raw["config"]["digest"] == built.config_digest


def _load_and_check(
    path: Path, tmp_path: Path, name: str
) -> Sequence[tuple[str | None, Descriptor]]:
    store = Store.open(tmp_path / f"load-{path.name}")
    loaded = load(store, path)
    assert [n for n, _ in loaded] == [name]
    _, manifest, config = read_image(store, loaded[0][1])
    assert config.config.env == ("PATH=/usr/bin:/bin",)
    write_rootfs(store, loaded[0][1], tmp_path / f"rootfs-{path.name}")
    assert tree(tmp_path / f"rootfs-{path.name}") == EXPECTED_TREE
    return loaded


def test_load_reads_what_skopeo_writes(built: Built, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    write_oci_layout(built.store, built.desc, layout, ["app:1"])
    src = f"oci:{layout}:1"

    _run("skopeo", "copy", src, f"docker-archive:{tmp_path / 'classic.tar'}:team/app:3")
    loaded = _load_and_check(tmp_path / "classic.tar", tmp_path, "team/app:3")
    # skopeo writes the classic shape: a new manifest over the uncompressed layer tars
    store = Store.open(tmp_path / "load-classic.tar")
    _, manifest, _ = read_image(store, loaded[0][1])
    assert [layer.digest for layer in manifest.layers] == list(built.diff_ids)
    assert manifest.config.digest == built.config_digest

    _run("skopeo", "copy", src, f"oci-archive:{tmp_path / 'skopeo-oci.tar'}:team/app:4")
    loaded = _load_and_check(tmp_path / "skopeo-oci.tar", tmp_path, "team/app:4")
    assert loaded[0][1].digest == built.desc.digest


def test_load_reads_what_podman_saves(built: Built, podman: Podman, tmp_path: Path) -> None:
    archive = tmp_path / "docker.tar"
    write_docker_tar(built.store, built.desc, archive, ["app:1"])
    podman("pull", f"docker-archive:{archive}")
    saved = tmp_path / "podman-saved.tar"
    podman("save", "--format", "docker-archive", "-o", saved, "localhost/app:1")
    _load_and_check(saved, tmp_path, "localhost/app:1")
