"""Hard links in layers made by ADD of an archive, COPY and RUN, read back by umoci.

Whatever order a layer's entries come in, the first entry of a hard-linked inode must be the
regular file with the data and the later ones links to it: umoci, containerd and our own
unpacker create a link with link(2), which needs its target to exist already. A root
filesystem tar made by GNU tar lists an inode under the name it met first in readdir order,
which is often one that sorts after the link names (Debian's /usr/bin/uncompress before
/usr/bin/gunzip), so sorting entries must move the data, not keep the archive's direction.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, OciImage, make_context, unpack

pytestmark = pytest.mark.tools

GUNZIP = b'#!/bin/sh\nexec gzip -d "$@"\n'
# (target, link names): GNU tar writes the target first and the links after it, as a type '1'
# entry naming the target; every link name here sorts before its target in a layer
LINKED = {
    "./bin/busybox": ("./bin/ash",),  # 'ash' < 'busybox' in the same directory
    "./usr/bin/uncompress": ("./usr/bin/gunzip", "./bin/gunzip"),  # three names, two dirs
}


def _busybox(layout: Path) -> bytes:
    """/bin/busybox from the busybox base image's layer."""
    image = OciImage(layout)
    layer = image.blob(image.manifest()["layers"][0]["digest"])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        member = tar.extractfile("bin/busybox")
        assert member is not None
        return member.read()


def _rootfs_tar(tmp_path: Path, busybox_layout: Path) -> Path:
    """A small root filesystem packed by GNU tar with the targets listed before their links."""
    tree = tmp_path / "tree"
    for d in ("bin", "usr/bin"):
        (tree / d).mkdir(parents=True)
    (tree / "bin/busybox").write_bytes(_busybox(busybox_layout))
    (tree / "usr/bin/uncompress").write_bytes(GUNZIP)
    for target, links in LINKED.items():
        (tree / target).chmod(0o755)
        for link in links:
            os.link(tree / target, tree / link)
    order = ["./", "./bin/", "./usr/", "./usr/bin/"]
    for target, links in LINKED.items():
        order += [target, *links]
    out = tmp_path / "rootfs.tar"
    subprocess.run(
        ["tar", "-C", tree, "--no-recursion", "-cf", out, *order], check=True, capture_output=True
    )
    with tarfile.open(out) as tar:  # the archive really has the links after their targets
        assert tar.getmember("./usr/bin/gunzip").linkname == "./usr/bin/uncompress"
        assert tar.getmember("./bin/ash").linkname == "./bin/busybox"
    return out


def _context(tmp_path: Path, busybox_layout: Path, dockerfile: str) -> Path:
    rootfs = _rootfs_tar(tmp_path, busybox_layout).read_bytes()
    return make_context(tmp_path, {"Dockerfile": dockerfile, "rootfs.tar": rootfs})


def _assert_data_first(members: list[tarfile.TarInfo]) -> None:
    """Every hard link entry names a regular file entry that came before it."""
    seen: set[str] = set()
    for m in members:
        name = m.name.rstrip("/")
        if m.islnk():
            assert m.linkname in seen, f"{name} links to {m.linkname}, not written before it"
        elif m.isreg():
            seen.add(name)


def _same_inode(root: Path, *paths: str) -> None:
    inodes = {(root / p).stat().st_ino for p in paths}
    assert len(inodes) == 1, f"{paths} are not one inode in the unpacked image"


def test_add_rootfs_tar_from_scratch(lb: Layerbuild, tmp_path: Path, busybox_layout: Path) -> None:
    """FROM scratch + ADD rootfs.tar /: the layer has the data before its links, umoci unpacks
    it, and the names GNU tar linked are one inode."""
    ctx = _context(tmp_path, busybox_layout, "FROM scratch\nADD rootfs.tar /\n")
    out = lb.build_oci(ctx)
    _assert_data_first(OciImage(out).layer_members(-1))
    root = unpack(out, "1")
    _same_inode(root, "usr/bin/uncompress", "usr/bin/gunzip", "bin/gunzip")
    _same_inode(root, "bin/busybox", "bin/ash")
    assert (root / "usr/bin/gunzip").read_bytes() == GUNZIP
    assert (root / "bin/ash").stat().st_mode & 0o777 == 0o755


@pytest.mark.root
@pytest.mark.overlay
def test_run_on_an_added_rootfs_reads_both_names(
    lb: Layerbuild, tmp_path: Path, busybox_layout: Path
) -> None:
    """FROM busybox + ADD of the tar + RUN: the step sees the linked names as one file (its
    lower layer unpacks), and so does umoci in the result."""
    ctx = _context(
        tmp_path,
        busybox_layout,
        "FROM busybox\nADD rootfs.tar /\n"
        "RUN [ /usr/bin/gunzip -ef /usr/bin/uncompress ] && [ /bin/ash -ef /bin/busybox ] "
        "&& cat /usr/bin/gunzip /bin/gunzip /usr/bin/uncompress > /read-all\n",
    )
    root = unpack(lb.build_oci(ctx), "1")
    assert (root / "read-all").read_bytes() == GUNZIP * 3
    _same_inode(root, "usr/bin/uncompress", "usr/bin/gunzip", "bin/gunzip")


@pytest.mark.root
@pytest.mark.overlay
def test_run_on_a_scratch_rootfs_base(
    lb: Layerbuild, tmp_path: Path, busybox_layout: Path
) -> None:
    """FROM scratch + ADD rootfs.tar / makes a base the next RUN can use (its shell is a hard
    link that sorts before its target)."""
    ctx = _context(
        tmp_path,
        busybox_layout,
        'FROM scratch\nADD rootfs.tar /\nRUN ["/bin/ash", "-c", "echo ran > /ok"]\n',
    )
    root = unpack(lb.build_oci(ctx), "1")
    assert (root / "ok").read_text() == "ran\n"


def test_copy_from_a_stage_with_an_added_rootfs(
    lb: Layerbuild, tmp_path: Path, busybox_layout: Path
) -> None:
    """COPY --from a stage made by ADD of the tar keeps the links, data first."""
    ctx = _context(
        tmp_path,
        busybox_layout,
        "FROM scratch AS fs\nADD rootfs.tar /\nFROM busybox\nCOPY --from=fs / /opt/fs/\n",
    )
    out = lb.build_oci(ctx)
    _assert_data_first(OciImage(out).layer_members(-1))
    root = unpack(out, "1")
    _same_inode(root, "opt/fs/usr/bin/uncompress", "opt/fs/usr/bin/gunzip", "opt/fs/bin/gunzip")
    _same_inode(root, "opt/fs/bin/busybox", "opt/fs/bin/ash")
    assert (root / "opt/fs/bin/gunzip").read_bytes() == GUNZIP


@pytest.mark.root
@pytest.mark.overlay
def test_run_that_makes_hard_links(lb: Layerbuild, tmp_path: Path) -> None:
    """A RUN that links names sorting before (and in another directory than) the file it links
    gives a layer umoci unpacks with one inode per linked file."""
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\n"
            "RUN mkdir -p /data/z && echo data > /data/z/target && ln /data/z/target /data/b "
            "&& ln /data/z/target /data/a && echo two > /data/y && ln /data/y /data/x\n"
        },
    )
    out = lb.build_oci(ctx)
    _assert_data_first(OciImage(out).layer_members(-1))
    root = unpack(out, "1")
    _same_inode(root, "data/z/target", "data/a", "data/b")
    _same_inode(root, "data/y", "data/x")
    assert (root / "data/a").read_text() == "data\n"


def _put_blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs/sha256" / digest).write_bytes(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


def _link_first_layer() -> bytes:
    """A layer as older layerbuild stores wrote it: the link sorted before its data."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("usr/", "usr/bin/"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        link = tarfile.TarInfo("usr/bin/gunzip")
        link.type, link.linkname, link.mode = tarfile.LNKTYPE, "usr/bin/uncompress", 0o755
        tar.addfile(link)
        data = tarfile.TarInfo("usr/bin/uncompress")
        data.size, data.mode = len(GUNZIP), 0o755
        tar.addfile(data, io.BytesIO(GUNZIP))
    return out.getvalue()


def _layout_with_old_layer(tmp_path: Path, busybox_layout: Path) -> Path:
    """busybox plus a link-first layer, as an OCI layout tagged `old`."""
    layout = tmp_path / "old-layout"
    shutil.copytree(busybox_layout, layout)
    index = json.loads((layout / "index.json").read_text())
    image = OciImage(layout)
    manifest, config = image.manifest(), image.config()
    layer = _link_first_layer()
    blob = _put_blob(layout, layer)
    config["rootfs"]["diff_ids"].append(blob["digest"])
    config["history"].append({"created_by": "an older layerbuild"})
    cfg = {**manifest["config"], **_put_blob(layout, json.dumps(config).encode())}
    manifest["config"] = cfg
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob})
    index["manifests"][0].update(_put_blob(layout, json.dumps(manifest).encode()))
    index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = "old"
    (layout / "index.json").write_text(json.dumps(index))
    return layout


@pytest.mark.root
@pytest.mark.overlay
def test_layer_with_a_link_before_its_data_still_unpacks(
    lb: Layerbuild, tmp_path: Path, busybox_layout: Path
) -> None:
    """An image from an older store, whose layer has the link entry first, is still a base a
    RUN can use and exports as a rootfs: our unpacker makes such a link at the end of the layer
    (umoci refuses that layer, so the result is read from `-o type=local`)."""
    lb.ok("load", _layout_with_old_layer(tmp_path, busybox_layout), "-t", "old:1")
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM old:1\n"
            "RUN [ /usr/bin/gunzip -ef /usr/bin/uncompress ] && cat /usr/bin/gunzip > /read\n"
        },
    )
    root = tmp_path / "rootfs"
    lb.build(ctx, "-o", f"type=local,dest={root}")
    assert (root / "read").read_bytes() == GUNZIP
    _same_inode(root, "usr/bin/gunzip", "usr/bin/uncompress")
