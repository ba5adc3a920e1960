from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from layerbuild.errors import ImageFormatError, UnsafeArchiveError
from layerbuild.store.unpack import apply_layer, clean_entry_path
from tests.support.hostile_tars import Entry, hostile_tars, make_tar

T = 1_600_000_000


def apply(entries: list[Entry], root: Path, **kw: object) -> None:
    apply_layer(io.BytesIO(make_tar(entries)), root, **kw)  # type: ignore[arg-type]


def snapshot_tree(path: Path) -> dict[str, tuple[int, int, bytes | str]]:
    """Everything under `path`: type+mode, inode link count and content or link target."""
    out: dict[str, tuple[int, int, bytes | str]] = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                body: bytes | str = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                body = Path(p).read_bytes()
            else:
                body = b""
            out[os.path.relpath(p, path)] = (st.st_mode, st.st_nlink, body)
    return out


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    v = tmp_path / "victim"
    v.mkdir()
    (v / "passwd").write_text("root:x:0:0\n")
    (v / "keep").mkdir()
    return v


@pytest.mark.parametrize("case", sorted(hostile_tars("/placeholder")))
def test_hostile_tar_refused_and_nothing_outside_changes(
    case: str, tmp_path: Path, victim: Path
) -> None:
    root = tmp_path / "deep" / "er" / "rootfs"
    root.mkdir(parents=True)

    def outside() -> dict[str, tuple[int, int, bytes | str]]:
        tree = snapshot_tree(tmp_path)
        return {k: v for k, v in tree.items() if not k.startswith("deep/er/rootfs")}

    before = outside()
    tar = hostile_tars(str(victim))[case]
    expected = ImageFormatError if case == "hardlink-absolute" else UnsafeArchiveError
    with pytest.raises(expected) as err:
        apply_layer(io.BytesIO(tar), root)
    assert (
        case == "hardlink-absolute" or "refused" in str(err.value) or "outside" in str(err.value)
    )
    assert outside() == before
    assert root.is_dir() and not root.is_symlink()


def test_hostile_error_names_the_entry(tmp_path: Path, victim: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(UnsafeArchiveError, match=r"'a/passwd'.*parent 'a' is a symlink"):
        apply_layer(io.BytesIO(hostile_tars(str(victim))["symlink-parent-absolute"]), root)


@pytest.mark.parametrize(
    ("name", "cleaned"),
    [("/etc/passwd", "etc/passwd"), ("./a/./b/", "a/b"), ("a/../b", "b"), ("/", ""), (".", "")],
)
def test_clean_entry_path(name: str, cleaned: str) -> None:
    assert clean_entry_path(name) == cleaned


def test_absolute_names_land_inside_root(tmp_path: Path) -> None:
    apply([Entry("/etc/hostname", data=b"box\n")], tmp_path)
    assert (tmp_path / "etc" / "hostname").read_bytes() == b"box\n"


def test_basic_entries_and_metadata(tmp_path: Path) -> None:
    apply(
        [
            Entry("bin", "dir", mode=0o755, mtime=T),
            Entry("bin/tool", data=b"#!/bin/sh\n", mode=0o4755, mtime=T + 1),
            Entry("bin/alias", "symlink", link="tool", mtime=T + 2),
            Entry("bin/hard", "hardlink", link="bin/tool"),
            Entry("run/pipe", "fifo", mode=0o600),
            Entry("ro", "dir", mode=0o555, mtime=T + 3),
            Entry("ro/inside", data=b"x", mode=0o400),
            Entry("implicit/parent/file", data=b"y"),
            Entry("user", data=b"z", xattrs=(("user.note", "hello"),)),
        ],
        tmp_path,
    )
    tool = tmp_path / "bin" / "tool"
    assert tool.read_bytes() == b"#!/bin/sh\n"
    assert stat.S_IMODE(tool.stat().st_mode) == 0o4755
    assert tool.stat().st_mtime == T + 1
    assert os.readlink(tmp_path / "bin" / "alias") == "tool"
    assert os.lstat(tmp_path / "bin" / "alias").st_mtime == T + 2
    assert (tmp_path / "bin" / "hard").stat().st_ino == tool.stat().st_ino
    assert stat.S_ISFIFO(os.lstat(tmp_path / "run" / "pipe").st_mode)
    ro = tmp_path / "ro"
    assert stat.S_IMODE(ro.stat().st_mode) == 0o555 and ro.stat().st_mtime == T + 3
    assert (ro / "inside").read_bytes() == b"x"
    assert (tmp_path / "bin").stat().st_mtime == T  # set after its children were written
    assert stat.S_IMODE((tmp_path / "implicit" / "parent").stat().st_mode) == 0o755
    assert os.getxattr(tmp_path / "user", "user.note") == b"hello"


def test_overlay_xattrs_never_applied(tmp_path: Path) -> None:
    notes: list[str] = []
    apply(
        [Entry("d", "dir", xattrs=(("trusted.overlay.opaque", "y"),))],
        tmp_path,
        note=notes.append,
    )
    assert any("trusted.overlay.opaque" in n for n in notes)
    assert "trusted.overlay.opaque" not in os.listxattr(tmp_path / "d")


def test_final_symlink_is_replaced_not_followed(tmp_path: Path, victim: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    apply([Entry("etc", "dir"), Entry("etc/passwd", "symlink", link=str(victim / "passwd"))], root)
    apply([Entry("etc/passwd", data=b"mine\n")], root)
    assert not (root / "etc" / "passwd").is_symlink()
    assert (root / "etc" / "passwd").read_bytes() == b"mine\n"
    assert (victim / "passwd").read_text() == "root:x:0:0\n"


def test_directory_replaces_symlink(tmp_path: Path, victim: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    apply([Entry("lib", "symlink", link=str(victim))], root)
    apply([Entry("lib", "dir"), Entry("lib/x", data=b"1")], root)
    assert (root / "lib").is_dir() and not (root / "lib").is_symlink()
    assert not (victim / "x").exists()


def test_file_replaces_directory_in_same_layer(tmp_path: Path) -> None:
    apply([Entry("a", "dir"), Entry("a/b", data=b"1"), Entry("a", data=b"file")], tmp_path)
    assert (tmp_path / "a").read_bytes() == b"file"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_devices_and_owners_as_root(tmp_path: Path) -> None:
    tar = make_tar([Entry("dev", "dir"), Entry("dev/null", "chardev", mode=0o666)])
    apply_layer(io.BytesIO(tar), tmp_path, rootless=False)
    assert stat.S_ISCHR(os.lstat(tmp_path / "dev" / "null").st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_owners_are_kept_by_uid_0_under_the_unprivileged_rules_too(tmp_path: Path) -> None:
    # root of a rootless user namespace: no device nodes, but the image's owners
    info = tarfile.TarInfo("home")
    info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, 1000, 1001
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.addfile(info)
    apply_layer(io.BytesIO(buf.getvalue()), tmp_path, rootless=True)
    st = os.stat(tmp_path / "home")
    assert (st.st_uid, st.st_gid) == (1000, 1001)


def test_devices_skipped_with_note_when_rootless(tmp_path: Path) -> None:
    notes: list[str] = []
    tar = make_tar([Entry("dev", "dir"), Entry("dev/null", "chardev", mode=0o666)])
    apply_layer(io.BytesIO(tar), tmp_path, rootless=True, note=notes.append)
    assert not os.path.lexists(tmp_path / "dev" / "null")
    assert any("dev/null" in n and "device" in n for n in notes)


def _lower(root: Path) -> None:
    apply(
        [
            Entry("etc", "dir"),
            Entry("etc/a", data=b"a"),
            Entry("etc/b", data=b"b"),
            Entry("etc/sub", "dir"),
            Entry("etc/sub/old", data=b"old"),
            Entry("opt", "dir"),
            Entry("opt/one", data=b"1"),
            Entry("opt/tree", "dir"),
            Entry("opt/tree/deep", data=b"d"),
            Entry("var", "dir"),
            Entry("var/log", "dir"),
            Entry("var/log/x", data=b"x"),
        ],
        root,
    )


def test_whiteouts_and_opaque_on_top_of_lower(tmp_path: Path) -> None:
    _lower(tmp_path)
    apply(
        [
            Entry("etc/.wh.a"),  # delete a file
            Entry("opt/.wh.tree"),  # delete a directory tree
            Entry("var", "dir"),
            Entry("var/.wh..wh..opq"),  # hide all of lower var/
            Entry("var/new", data=b"new"),
            Entry("etc/sub", "dir"),
            Entry("etc/sub/fresh", data=b"f"),
            Entry("etc/.wh.missing"),  # whiteout of something absent: nothing to do
            Entry("nowhere/.wh.x"),  # parent absent: nothing to do
        ],
        tmp_path,
    )
    assert not (tmp_path / "etc" / "a").exists()
    assert (tmp_path / "etc" / "b").read_bytes() == b"b"
    assert not (tmp_path / "opt" / "tree").exists()
    assert (tmp_path / "opt" / "one").exists()
    assert sorted(os.listdir(tmp_path / "var")) == ["new"]
    assert sorted(os.listdir(tmp_path / "etc" / "sub")) == ["fresh", "old"]
    assert not (tmp_path / "nowhere").exists()


def test_opaque_after_children_keeps_this_layers_entries(tmp_path: Path) -> None:
    _lower(tmp_path)
    apply(
        [
            Entry("etc", "dir"),
            Entry("etc/b", data=b"B2"),  # rewritten by this layer: survives
            Entry("etc/sub", "dir"),
            Entry("etc/sub/fresh", data=b"f"),
            Entry("etc/.wh..wh..opq"),  # marker after the children
        ],
        tmp_path,
    )
    assert sorted(os.listdir(tmp_path / "etc")) == ["b", "sub"]
    assert (tmp_path / "etc" / "b").read_bytes() == b"B2"
    # etc/sub came from this layer, but its lower content is hidden by the opaque parent
    assert os.listdir(tmp_path / "etc" / "sub") == ["fresh"]


def test_whiteout_does_not_remove_same_layer_entry(tmp_path: Path) -> None:
    apply([Entry("f", data=b"1"), Entry(".wh.f")], tmp_path)
    assert (tmp_path / "f").read_bytes() == b"1"


def test_aufs_metadata_is_skipped(tmp_path: Path) -> None:
    notes: list[str] = []
    apply([Entry(".wh..wh.plnk", "dir"), Entry("x", data=b"1")], tmp_path, note=notes.append)
    assert os.listdir(tmp_path) == ["x"]
    assert notes


def test_root_entry_sets_root_metadata(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    apply([Entry("./", "dir", mode=0o700, mtime=T), Entry("f", data=b"1")], root)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert root.stat().st_mtime == T


def test_hardlink_to_missing_target(tmp_path: Path) -> None:
    with pytest.raises(ImageFormatError, match="does not exist"):
        apply([Entry("h", "hardlink", link="nope")], tmp_path)


def test_hardlink_before_its_target_is_made_at_the_end_of_the_layer(tmp_path: Path) -> None:
    """Older layerbuild stores wrote Debian's usr/bin/gunzip (a link) before its target."""
    apply(
        [
            Entry("usr/", "dir", mode=0o755),
            Entry("usr/bin/", "dir", mode=0o755),
            Entry("usr/bin/gunzip", "hardlink", link="usr/bin/uncompress"),
            Entry("usr/bin/uncompress", data=b"gzip -d", mode=0o755),
            Entry("usr/bin/zcat", "hardlink", link="usr/bin/gunzip"),
        ],
        tmp_path,
    )
    names = ("gunzip", "uncompress", "zcat")
    inodes = {(tmp_path / "usr/bin" / n).stat().st_ino for n in names}
    assert len(inodes) == 1
    assert (tmp_path / "usr/bin/gunzip").read_bytes() == b"gzip -d"
    assert (tmp_path / "usr/bin").stat().st_mtime == 1_700_000_000  # set after the links


def test_parent_is_a_file(tmp_path: Path) -> None:
    with pytest.raises(ImageFormatError, match="not a directory"):
        apply([Entry("f", data=b"1"), Entry("f/x", data=b"2")], tmp_path)


def test_not_a_tar(tmp_path: Path) -> None:
    with pytest.raises(ImageFormatError, match="not a valid tar"):
        apply_layer(io.BytesIO(b"\x01" * 2000), tmp_path)


@pytest.mark.parametrize(
    "case", ["tar-slip", "symlink-parent-absolute", "hardlink-through-symlink"]
)
def test_hostile_fixtures_really_escape_a_naive_extractor(
    case: str, tmp_path: Path, victim: Path
) -> None:
    """Guards the fixtures: an extractor without our checks is fooled by them."""
    import tarfile

    root = tmp_path / "deep" / "er" / "rootfs"
    root.mkdir(parents=True)
    before = snapshot_tree(victim)
    with tarfile.open(fileobj=io.BytesIO(hostile_tars(str(victim))[case])) as tf:
        tf.extractall(root, filter="fully_trusted")
    assert snapshot_tree(victim) != before
