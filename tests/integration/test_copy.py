"""COPY through the real CLI; trees are read back with umoci, layer entries with tarfile."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, OciImage, make_context, unpack

pytestmark = pytest.mark.tools


def _ctx(tmp_path: Path, dockerfile: str, files: dict[str, str | bytes]) -> Path:
    return make_context(tmp_path, {"Dockerfile": dockerfile, **files})


def test_directory_source_copies_its_contents(lb: Layerbuild, tmp_path: Path) -> None:
    """COPY dir /dest/ copies what is inside dir (recursively), not dir itself."""
    ctx = _ctx(
        tmp_path,
        "FROM busybox\nCOPY src /dest/\n",
        {"src/a.txt": "a\n", "src/sub/b.txt": "b\n"},
    )
    root = lb.rootfs(ctx)
    assert (root / "dest/a.txt").read_text() == "a\n"
    assert (root / "dest/sub/b.txt").read_text() == "b\n"
    assert not (root / "dest/src").exists()


def test_several_sources_into_a_directory(lb: Layerbuild, tmp_path: Path) -> None:
    """Several sources land side by side in a dest ending in '/', created with its parents."""
    ctx = _ctx(
        tmp_path,
        "FROM busybox\nCOPY one.txt two.txt dir /new/deep/\n",
        {"one.txt": "1", "two.txt": "2", "dir/three.txt": "3"},
    )
    root = lb.rootfs(ctx)
    assert sorted(os.listdir(root / "new/deep")) == ["one.txt", "three.txt", "two.txt"]
    assert (root / "new/deep/three.txt").read_text() == "3"


def test_globs_select_matching_files_only(lb: Layerbuild, tmp_path: Path) -> None:
    """`*.txt` and `data?/` glob patterns pick exactly the matching context entries."""
    ctx = _ctx(
        tmp_path,
        "FROM busybox\nCOPY *.txt /g/\nCOPY data? /d/\n",
        {
            "a.txt": "a",
            "b.txt": "b",
            "c.md": "c",
            "data1/x": "x",
            "data2/y": "y",
            "data10/z": "z",
        },
    )
    root = lb.rootfs(ctx)
    assert sorted(os.listdir(root / "g")) == ["a.txt", "b.txt"]
    assert sorted(os.listdir(root / "d")) == ["x", "y"]


def test_relative_dest_is_joined_to_workdir(lb: Layerbuild, tmp_path: Path) -> None:
    """A relative dest resolves against the current WORKDIR (itself relative to the last)."""
    ctx = _ctx(
        tmp_path,
        "FROM busybox\nWORKDIR /srv\nWORKDIR app\nCOPY f.txt conf/\nCOPY f.txt .\n",
        {"f.txt": "f\n"},
    )
    root = lb.rootfs(ctx)
    assert (root / "srv/app/conf/f.txt").read_text() == "f\n"
    assert (root / "srv/app/f.txt").read_text() == "f\n"


def test_chown_by_name_uses_the_image_passwd(lb: Layerbuild, tmp_path: Path) -> None:
    """--chown=app:app resolves through the image's /etc/passwd and /etc/group (app is 1000);
    the created parent directory is owned as well, as in BuildKit."""
    ctx = _ctx(
        tmp_path,
        "FROM busybox\nCOPY --chown=app:app f.txt /owned/f.txt\nCOPY --chown=app dir /owned2/\n",
        {"f.txt": "f", "dir/g": "g"},
    )
    root = lb.rootfs(ctx)
    st = (root / "owned/f.txt").stat()
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    st = (root / "owned").stat()
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    st = (root / "owned2/g").stat()
    assert (st.st_uid, st.st_gid) == (1000, 1000)


def test_chown_by_number_needs_no_passwd_entry(lb: Layerbuild, tmp_path: Path) -> None:
    """--chown=1234:5678 is taken as numbers, even when no such user exists."""
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY --chown=1234:5678 f.txt /f.txt\n", {"f.txt": "f"})
    st = (lb.rootfs(ctx) / "f.txt").stat()
    assert (st.st_uid, st.st_gid) == (1234, 5678)


def test_chown_unknown_user_fails_naming_it(lb: Layerbuild, tmp_path: Path) -> None:
    """--chown=ghost fails the build with a message naming the user that is not in passwd."""
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY --chown=ghost f.txt /f.txt\n", {"f.txt": "f"})
    proc = lb("build", "-t", "x:1", ctx)
    assert proc.returncode != 0
    assert "ghost" in proc.stderr


def test_chmod_sets_mode_of_files_and_dirs(lb: Layerbuild, tmp_path: Path) -> None:
    """--chmod=0640 sets the mode of every copied entry (files and copied directories)."""
    ctx = _ctx(
        tmp_path,
        "FROM busybox\nCOPY --chmod=0640 f.txt /m/f.txt\nCOPY --chmod=751 d /md/\n",
        {"f.txt": "f", "d/sub/x": "x"},
    )
    (ctx / "f.txt").chmod(0o777)
    root = lb.rootfs(ctx)
    assert (root / "m/f.txt").stat().st_mode & 0o7777 == 0o640
    assert (root / "md/sub/x").stat().st_mode & 0o7777 == 0o751
    assert (root / "md/sub").stat().st_mode & 0o7777 == 0o751


def test_modes_are_kept_without_chmod(lb: Layerbuild, tmp_path: Path) -> None:
    """Without --chmod a file keeps its context mode (an executable stays executable)."""
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY run.sh secret /x/\n", {"run.sh": "#!", "secret": "s"})
    (ctx / "run.sh").chmod(0o755)
    (ctx / "secret").chmod(0o600)
    root = lb.rootfs(ctx)
    assert (root / "x/run.sh").stat().st_mode & 0o777 == 0o755
    assert (root / "x/secret").stat().st_mode & 0o777 == 0o600


def test_symlinks_are_copied_as_links_never_followed(lb: Layerbuild, tmp_path: Path) -> None:
    """Symlinks inside a copied directory stay links, even one pointing outside the context:
    the outside file's content must never reach the image."""
    outside = tmp_path / "outside-secret"
    outside.write_text("TOP SECRET\n")
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY d /d/\n", {"d/real.txt": "real\n"})
    os.symlink("real.txt", ctx / "d/rel-link")
    os.symlink(str(outside), ctx / "d/abs-out")
    os.symlink("../../outside-secret", ctx / "d/rel-out")
    out = lb.build_oci(ctx)
    root = unpack(out, "1")
    assert os.readlink(root / "d/rel-link") == "real.txt"
    assert os.readlink(root / "d/abs-out") == str(outside)
    assert os.readlink(root / "d/rel-out") == "../../outside-secret"
    layer = OciImage(out)
    members = {m.name.rstrip("/"): m for m in layer.layer_members(-1)}
    assert members["d/abs-out"].issym() and members["d/rel-out"].issym()
    blob = b"".join(layer.blob(d["digest"]) for d in layer.manifest()["layers"][-1:])
    assert b"TOP SECRET" not in blob


def test_hard_links_are_link_entries_in_the_layer(lb: Layerbuild, tmp_path: Path) -> None:
    """Two hard-linked context files give one file entry and one link entry in the layer tar,
    and umoci unpacks them as one inode."""
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY h /h/\n", {"h/a": "same content\n"})
    os.link(ctx / "h/a", ctx / "h/b")
    out = lb.build_oci(ctx)
    members = {m.name.rstrip("/"): m for m in OciImage(out).layer_members(-1)}
    kinds = sorted((members["h/a"].type, members["h/b"].type))
    assert kinds == sorted((tarfile.REGTYPE, tarfile.LNKTYPE))
    link = members["h/b"] if members["h/b"].islnk() else members["h/a"]
    assert link.linkname in ("h/a", "h/b") and link.linkname != link.name
    root = unpack(out, "1")
    assert (root / "h/a").stat().st_ino == (root / "h/b").stat().st_ino
    assert (root / "h/b").read_text() == "same content\n"


def test_file_into_existing_directory(lb: Layerbuild, tmp_path: Path) -> None:
    """COPY f /etc (no trailing slash) puts the file inside when /etc is a directory."""
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY f.conf /etc\n", {"f.conf": "conf\n"})
    root = lb.rootfs(ctx)
    assert (root / "etc/f.conf").read_text() == "conf\n"
    assert (root / "etc/passwd").is_file()  # the directory was not replaced


def test_file_to_new_path_is_renamed(lb: Layerbuild, tmp_path: Path) -> None:
    """COPY f /new/name (no trailing slash, not a dir) writes the file at that name."""
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY f.conf /opt/renamed\n", {"f.conf": "conf\n"})
    assert (lb.rootfs(ctx) / "opt/renamed").read_text() == "conf\n"


def test_missing_source_fails_naming_the_file(lb: Layerbuild, tmp_path: Path) -> None:
    """A COPY source that does not exist fails the build (non-zero) and names the file."""
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY nope.txt /x/\n", {"other": "o"})
    proc = lb("build", "-t", "x:1", ctx)
    assert proc.returncode != 0
    assert "nope.txt" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_several_sources_need_a_directory_dest(lb: Layerbuild, tmp_path: Path) -> None:
    """Docker refuses several sources to a dest without a trailing slash."""
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY a b /target\n", {"a": "a", "b": "b"})
    proc = lb("build", "-t", "x:1", ctx)
    assert proc.returncode != 0
    assert "/target" in proc.stderr


def test_exclude_drops_matching_paths(lb: Layerbuild, tmp_path: Path) -> None:
    """COPY --exclude=PATTERN leaves matching files (at any depth below the source) out."""
    ctx = _ctx(
        tmp_path,
        "FROM busybox\nCOPY --exclude=*.tmp --exclude=skip src /e/\n",
        {"src/keep.txt": "k", "src/x.tmp": "t", "src/skip/y": "y", "src/sub/keep2": "k2"},
    )
    root = lb.rootfs(ctx)
    names = sorted(str(p.relative_to(root / "e")) for p in (root / "e").rglob("*"))
    assert names == ["keep.txt", "sub", "sub/keep2"]


def test_copy_from_scratch_builds_a_one_layer_image(lb: Layerbuild, tmp_path: Path) -> None:
    """FROM scratch + COPY gives an image whose only layer holds the copied file."""
    ctx = _ctx(tmp_path, "FROM scratch\nCOPY f /f\n", {"f": "only\n"})
    out = lb.build_oci(ctx)
    img = OciImage(out)
    assert len(img.manifest()["layers"]) == 1
    assert [m.name for m in img.layer_members(0)] == ["f"]


def test_top_level_symlink_source_is_followed_inside_the_context(
    lb: Layerbuild, tmp_path: Path
) -> None:
    """A source that is itself a symlink is followed (BuildKit's FollowSymlinks), within the
    context: a link to a context file copies the file's content; a link pointing outside the
    context resolves inside it (as in a chroot), finds nothing and fails without reading the
    outside file."""
    outside = tmp_path / "outside-secret"
    outside.write_text("TOP SECRET\n")
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY link /copied\n", {"real.txt": "real\n"})
    os.symlink("real.txt", ctx / "link")
    os.symlink(str(outside), ctx / "out")
    root = lb.rootfs(ctx)
    assert not (root / "copied").is_symlink()
    assert (root / "copied").read_text() == "real\n"
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY out /copied\n")
    proc = lb("build", "-t", "x:1", ctx)
    assert proc.returncode != 0
    assert "out" in proc.stderr and "TOP SECRET" not in proc.stderr
