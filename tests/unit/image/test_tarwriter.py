"""The layer tar writer: Go archive/tar + containerd header choices, determinism, errors."""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import tarfile

import pytest

from layerbuild.errors import LayerContentError
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.tarheader import entry_header
from layerbuild.image.tarwriter import write_tar
from tests.support.random_layer import content_of, opener_for, random_layer


def tar_bytes(changes: list[Change], **kw: int) -> bytes:
    out = io.BytesIO()
    write_tar(changes, out, **kw)
    return out.getvalue()


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: m for m in tf.getmembers()}


def test_simple_file_header_matches_go_ustar_layout() -> None:
    data = b"abc"
    header = entry_header(
        Change("a/f", ChangeKind.FILE, 0o644, size=3, mtime=7, content=opener_for(data))
    )
    assert len(header) == 512
    assert header[0:100] == b"a/f" + b"\0" * 97
    assert header[100:108] == b"0000644\0"
    assert header[108:116] == b"0000000\0" and header[116:124] == b"0000000\0"
    assert header[124:136] == b"00000000003\0"
    assert header[136:148] == b"00000000007\0"
    assert header[156:157] == b"0"
    assert header[257:265] == b"ustar\x0000"
    assert header[265:329] == b"\0" * 64  # no user or group names
    assert header[329:345] == b"0000000\x000000000\0"  # devmajor/devminor always formatted
    assert header[345:512] == b"\0" * 167
    stored = header[148:156]
    assert stored[6:8] == b"\0 "
    assert int(stored[:6], 8) == sum(header[:148]) + 8 * 32 + sum(header[156:])


def test_empty_layer_is_two_zero_blocks_without_record_padding() -> None:
    assert tar_bytes([]) == b"\0" * 1024
    data = tar_bytes([Change("f", ChangeKind.FILE, size=1, content=opener_for(b"x"))])
    assert len(data) == 512 + 512 + 1024  # header, one padded data block, end of archive
    assert data.endswith(b"\0" * 1024)


def test_output_is_identical_across_runs_and_input_orders() -> None:
    changes = random_layer(7)
    first = tar_bytes(changes)
    shuffled = list(changes)
    random.Random(1).shuffle(shuffled)
    assert tar_bytes(shuffled) == first
    assert tar_bytes(random_layer(7)) == first
    assert tar_bytes(random_layer(8)) != first


def test_round_trip_through_python_tarfile() -> None:
    changes = random_layer(3)
    got = members(tar_bytes(changes))
    data = tar_bytes(changes)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for ch in changes:
            if ch.kind is ChangeKind.WHITEOUT:
                parent = ch.parent + "/" if ch.parent else ""
                info = got[f"{parent}.wh.{ch.name}"]
                assert (info.type, info.mode, info.mtime, info.size) == (tarfile.REGTYPE, 0, 0, 0)
                continue
            if ch.kind is ChangeKind.OPAQUE:
                assert got[f"{ch.path}/.wh..wh..opq"].mode == 0
                continue
            info = got[ch.path]
            assert info.mode == ch.mode and info.uid == ch.uid and info.gid == ch.gid
            assert info.mtime == ch.mtime and info.uname == "" and info.gname == ""
            if ch.kind is ChangeKind.FILE:
                reader = tf.extractfile(info)
                assert reader is not None and reader.read() == content_of(ch)
            elif ch.kind in (ChangeKind.SYMLINK, ChangeKind.HARDLINK):
                assert info.linkname == ch.link
            elif ch.kind in (ChangeKind.CHARDEV, ChangeKind.BLOCKDEV):
                assert (info.devmajor, info.devminor) == (ch.devmajor, ch.devminor)
            for key, value in ch.xattrs:
                assert (
                    info.pax_headers["SCHILY.xattr." + key].encode("utf-8", "surrogateescape")
                    == value
                )


def test_entries_are_sorted_parents_first_and_dirs_end_in_slash() -> None:
    changes = [
        Change("a.b", ChangeKind.FILE),
        Change("a/b", ChangeKind.FILE),
        Change("a", ChangeKind.DIR, 0o755),
        Change("a", ChangeKind.OPAQUE),
        Change("z", ChangeKind.WHITEOUT),
    ]
    with tarfile.open(fileobj=io.BytesIO(tar_bytes(changes))) as tf:
        names = [m.name for m in tf.getmembers()]
    assert names == ["a", "a/.wh..wh..opq", "a/b", "a.b", ".wh.z"]
    assert tar_bytes(changes)[:2] == b"a/"  # the raw dir name keeps its '/'


def test_mtime_clamped_to_source_date_epoch() -> None:
    changes = [
        Change("old", ChangeKind.FILE, mtime=50),
        Change("new", ChangeKind.FILE, mtime=500),
        Change("gone", ChangeKind.WHITEOUT, mtime=500),
    ]
    got = members(tar_bytes(changes, source_date_epoch=100))
    assert (got["old"].mtime, got["new"].mtime, got[".wh.gone"].mtime) == (50, 100, 0)
    assert members(tar_bytes(changes))["new"].mtime == 500


def test_ustar_is_kept_for_long_names_that_split_at_a_slash() -> None:
    name = "d" * 90 + "/" + "f" * 90
    header = entry_header(Change(name, ChangeKind.FILE))
    assert len(header) == 512  # no PAX header
    assert header[:90] == b"f" * 90 and header[345:435] == b"d" * 90
    assert name in members(tar_bytes([Change(name, ChangeKind.FILE)]))


@pytest.mark.parametrize(
    ("change", "record"),
    [
        (Change("x" * 101, ChangeKind.FILE), b"path=" + b"x" * 101),
        (Change("caf\u00e9", ChangeKind.FILE), "path=caf\u00e9".encode()),
        (Change("l", ChangeKind.SYMLINK, link="t" * 101), b"linkpath=" + b"t" * 101),
        (Change("u", ChangeKind.FILE, uid=3_000_000), b"uid=3000000"),
        (Change("g", ChangeKind.FILE, gid=2_097_152), b"gid=2097152"),
        (Change("m", ChangeKind.FILE, mtime=-5), b"mtime=-5"),
        (
            Change("d" * 100 + "/s", ChangeKind.SYMLINK, link="\u00e9"),
            b"path=" + b"d" * 100 + b"/s",
        ),
        (
            Change("c", ChangeKind.FILE, xattrs=(("security.capability", b"\x01\0"),)),
            b"SCHILY.xattr.security.capability=\x01\0",
        ),
    ],
)
def test_pax_header_only_where_ustar_cannot_hold_the_value(change: Change, record: bytes) -> None:
    header = entry_header(change)
    assert len(header) == 512 * 3  # extended header, its records, the main header
    assert header[156:157] == b"x"  # the extended header comes first
    assert record + b"\n" in header[512:1024]
    assert header[1024 + 257 : 1024 + 263] == b"ustar\0"


def test_size_over_8_gib_goes_to_a_pax_record_and_zero_in_the_header() -> None:
    size = 10 << 30
    header = entry_header(Change("big", ChangeKind.FILE, size=size))
    assert b"size=10737418240\n" in header[512:1024]
    main = header[1024:]
    assert main[124:136] == b"00000000000\0"
    info = tarfile.TarInfo.frombuf(main, "utf-8", "surrogateescape")
    assert info.name == "big" and info.size == 0  # the real size lives in the PAX record
    assert len(entry_header(Change("fits", ChangeKind.FILE, size=(8 << 30) - 1))) == 512


def test_pax_main_header_keeps_ascii_and_cuts_the_name() -> None:
    name = "é" + "n" * 120
    header = entry_header(Change(name, ChangeKind.FILE))
    assert header[1024 : 1024 + 100] == b"n" * 100
    assert header[:100].rstrip(b"\0") == b"PaxHeaders.0/" + b"n" * 87


def test_hardlink_symlink_device_fifo_types() -> None:
    changes = [
        Change("f", ChangeKind.FILE, size=2, content=opener_for(b"hi")),
        Change("h", ChangeKind.HARDLINK, link="f", size=2),
        Change("s", ChangeKind.SYMLINK, 0o777, link="../etc/passwd", size=13),
        Change("c", ChangeKind.CHARDEV, 0o666, devmajor=1, devminor=3),
        Change("b", ChangeKind.BLOCKDEV, devmajor=8, devminor=1),
        Change("p", ChangeKind.FIFO),
    ]
    got = members(tar_bytes(changes))
    assert got["h"].islnk() and got["h"].linkname == "f" and got["h"].size == 0
    assert got["s"].issym() and got["s"].size == 0
    assert got["c"].ischr() and (got["c"].devmajor, got["c"].devminor) == (1, 3)
    assert got["b"].isblk() and got["p"].isfifo()


@pytest.mark.parametrize("actual", [b"short", b"much too long data"])
def test_content_that_changed_size_is_refused(actual: bytes) -> None:
    change = Change("f", ChangeKind.FILE, size=10, content=opener_for(actual))
    with pytest.raises(LayerContentError, match="f: expected 10 bytes"):
        write_tar([change], io.BytesIO())


def test_unreadable_content_is_reported_with_its_path() -> None:
    def broken() -> io.BytesIO:
        raise PermissionError(13, "Permission denied")

    with pytest.raises(LayerContentError, match="secret: cannot read"):
        write_tar([Change("secret", ChangeKind.FILE, size=1, content=broken)], io.BytesIO())


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar not installed")
def test_gnu_tar_lists_our_output(tmp_path: object) -> None:
    changes = random_layer(5, big_files=0)
    result = subprocess.run(
        ["tar", "-tvf", "-"], input=tar_bytes(changes), capture_output=True, check=True
    )
    listing = result.stdout.decode("utf-8", "replace")
    assert "warning" not in result.stderr.decode().lower()
    expected = sum(1 for ch in changes)
    assert len(listing.splitlines()) == expected
    assert "level-11-" in listing  # the > 256-byte path survived


def _linked_layer(names: list[str], data_at: str, data: bytes = b"data") -> list[Change]:
    """One inode under `names`: the data given at `data_at`, the other names linked to it."""
    out = [Change(n.rpartition("/")[0], ChangeKind.DIR, 0o755) for n in names if "/" in n]
    for name in names:
        if name == data_at:
            out.append(
                Change(name, ChangeKind.FILE, 0o755, size=len(data), content=opener_for(data))
            )
        else:
            out.append(Change(name, ChangeKind.HARDLINK, 0o755, link=data_at))
    return out


def _entries(data: bytes) -> list[tuple[str, str, str, bytes]]:
    """(name, 'file'|'link'|'dir', link target, content) in archive order."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf.getmembers():
            body = tf.extractfile(m).read() if m.isreg() else b""  # type: ignore[union-attr]
            kind = "file" if m.isreg() else "link" if m.islnk() else "dir"
            out.append((m.name, kind, m.linkname, body))
    return out


def test_hard_link_sorting_before_its_target_gets_the_data() -> None:
    """GNU tar's Debian rootfs: usr/bin/gunzip links to usr/bin/uncompress, and sorts first."""
    changes = _linked_layer(["usr/bin/uncompress", "usr/bin/gunzip"], "usr/bin/uncompress")
    assert _entries(tar_bytes(changes))[1:] == [
        ("usr/bin/gunzip", "file", "", b"data"),
        ("usr/bin/uncompress", "link", "usr/bin/gunzip", b""),
    ]


def test_three_names_for_one_inode_link_to_the_first() -> None:
    names = ["d/c", "d/a", "d/b"]
    for data_at in names:
        entries = _entries(tar_bytes(_linked_layer(names, data_at)))
        assert entries[1:] == [
            ("d/a", "file", "", b"data"),
            ("d/b", "link", "d/a", b""),
            ("d/c", "link", "d/a", b""),
        ]


def test_links_across_directories_and_chains_link_to_the_first_name() -> None:
    changes = [
        Change("z", ChangeKind.DIR, 0o755),
        Change("z/target", ChangeKind.FILE, 0o700, size=2, mtime=5, content=opener_for(b"hi")),
        Change("a", ChangeKind.DIR, 0o755),
        Change("a/via", ChangeKind.HARDLINK, link="m/link"),  # a link to a link
        Change("m", ChangeKind.DIR, 0o755),
        Change("m/link", ChangeKind.HARDLINK, link="z/target"),
    ]
    data = tar_bytes(changes)
    assert [e for e in _entries(data) if e[1] != "dir"] == [
        ("a/via", "file", "", b"hi"),
        ("m/link", "link", "a/via", b""),
        ("z/target", "link", "a/via", b""),
    ]
    via = members(data)["a/via"]
    assert (via.mode, via.mtime, via.size) == (0o700, 5, 2)  # the inode's metadata moved too
    shuffled = list(changes)
    random.Random(3).shuffle(shuffled)
    assert tar_bytes(shuffled) == data


def test_links_already_after_their_data_and_links_out_of_the_layer_are_kept() -> None:
    changes = [
        *_linked_layer(["bin/ash", "bin/busybox"], "bin/ash"),
        Change("bin/sh", ChangeKind.HARDLINK, link="bin/lower"),  # a file of a lower layer
    ]
    assert [e for e in _entries(tar_bytes(changes)) if e[1] != "dir"] == [
        ("bin/ash", "file", "", b"data"),
        ("bin/busybox", "link", "bin/ash", b""),
        ("bin/sh", "link", "bin/lower", b""),
    ]
