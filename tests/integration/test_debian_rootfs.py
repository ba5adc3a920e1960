"""`FROM scratch` + `ADD rootfs.tar /` of a real root filesystem: the Debian bookworm tree that
debootstrap made, with its hard links (usr/bin/gunzip and uncompress are one inode, as are
several others). GNU tar puts an inode's data on whichever name its directory walk meets first,
which is often not the first in sorted order: `uncompress` carrying the data and `gunzip`
linking to it broke the layer (the link came first once sorted, and umoci refused the image).
The fixture's tar is rewritten that way for every inode (the data on the name that sorts last),
so each hard link is the hard case. The layer layerbuild writes must put each inode's data on
its first name in layer order, so that umoci and the next RUN can unpack it."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from tests.integration.conftest import DebianBase
from tests.support.cli import make_context, unpack

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.tools, pytest.mark.slow]


def _data_on_the_last_name(source: Path, out: Path) -> list[tuple[str, str]]:
    """Rewrite `source` so each hard-linked inode's data is on its name that sorts last (that
    entry first, the others linking to it); the (link, target) pairs written."""
    with tarfile.open(source) as tar:
        members = tar.getmembers()
        groups: dict[str, list[tarfile.TarInfo]] = {}
        for m in members:
            if m.islnk():
                groups.setdefault(m.linkname, []).append(m)
        pairs = []
        with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
            for m in members:
                if m.islnk():
                    continue  # written with their target's group
                links = groups.get(m.name)
                if not links:
                    dst.addfile(m, tar.extractfile(m) if m.isfile() else None)
                    continue
                names = sorted([m.name, *(x.name for x in links)])
                data = tarfile.TarInfo(names[-1])
                data.size, data.mode, data.uid, data.gid, data.mtime = (
                    m.size, m.mode, m.uid, m.gid, m.mtime,
                )  # fmt: skip
                dst.addfile(data, tar.extractfile(m))
                for name in names[:-1]:
                    link = tarfile.TarInfo(name)
                    link.type, link.linkname = tarfile.LNKTYPE, names[-1]
                    link.mode, link.uid, link.gid, link.mtime = m.mode, m.uid, m.gid, m.mtime
                    dst.addfile(link)
                    pairs.append((name, names[-1]))
    return pairs


def test_scratch_plus_the_debian_rootfs_tar_is_a_base_umoci_and_run_accept(
    debian_base: DebianBase, tmp_path: Path
) -> None:
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM scratch\nADD rootfs.tar /\n"
            'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n'
            "RUN test /usr/bin/gunzip -ef /usr/bin/uncompress && echo hi | gzip | zcat > /ok\n"
            'CMD ["bash"]\n',
        },
    )
    links = _data_on_the_last_name(debian_base.rootfs_tar, ctx / "rootfs.tar")
    assert ("usr/bin/gunzip", "usr/bin/uncompress") in links, links
    lb = debian_base.new_store(tmp_path / "store")
    image = lb.build_oci(ctx, "--network", "none")
    root = unpack(image, "1")  # umoci refused the link-first layer before
    assert (root / "ok").read_text() == "hi\n"
    for name, target in links:
        assert os.stat(root / name).st_ino == os.stat(root / target).st_ino, (name, target)
    assert os.stat(root / "usr/bin/gunzip").st_nlink >= 2
