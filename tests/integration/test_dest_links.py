"""WORKDIR and COPY destinations that pass through symbolic links in the image.

BuildKit resolves such a path inside the rootfs first (continuity's fs.RootPath: absolute link
targets from the image root, `..` stopping at the root), then makes what is missing at the
resolved place (fsutil's MkdirAll): the link stays a link and its target is created. The links
are put in the image by copying them from the context (a COPY keeps links as links), so these
tests need no sandbox; the one through `RUN ln -sf` is the issue's own case.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, make_context

pytestmark = pytest.mark.tools


def _ctx(tmp_path: Path, dockerfile: str, links: dict[str, str]) -> Path:
    """A context with `f.txt` and, under `links/`, the symbolic links given (name -> target)."""
    ctx = make_context(tmp_path, {"Dockerfile": dockerfile, "f.txt": "f\n", "links/.keep": ""})
    for name, target in links.items():
        os.symlink(target, ctx / "links" / name)
    return ctx


def _is_link(path: Path, target: str) -> bool:
    return path.is_symlink() and os.readlink(path) == target


def test_workdir_through_a_dangling_link_makes_its_target(lb: Layerbuild, tmp_path: Path) -> None:
    """WORKDIR /tempest with /tempest -> /var/lib/tempest (missing) makes /var/lib/tempest,
    keeps the link, and a relative COPY lands in the target."""
    ctx = _ctx(
        tmp_path,
        "FROM busybox\nCOPY links/ /\nWORKDIR /tempest\nCOPY f.txt .\n",
        {"tempest": "/var/lib/tempest"},
    )
    root = lb.rootfs(ctx)
    assert _is_link(root / "tempest", "/var/lib/tempest")
    assert (root / "var/lib/tempest").is_dir()
    assert (root / "var/lib/tempest/f.txt").read_text() == "f\n"
    assert oct((root / "var/lib/tempest").stat().st_mode & 0o7777) == oct(0o755)


def test_workdir_through_a_link_to_an_existing_directory(lb: Layerbuild, tmp_path: Path) -> None:
    """A link to a directory that is there is kept as it is."""
    ctx = _ctx(
        tmp_path,
        "FROM busybox\nCOPY f.txt /srv/app/\nCOPY links/ /\nWORKDIR /app\nCOPY f.txt g.txt\n",
        {"app": "../srv/app"},
    )
    root = lb.rootfs(ctx)
    assert _is_link(root / "app", "../srv/app")
    assert (root / "srv/app/g.txt").read_text() == "f\n"


def test_workdir_through_a_link_in_a_parent(lb: Layerbuild, tmp_path: Path) -> None:
    """WORKDIR /a/c with /a -> /b (missing) makes /b and /b/c, owned by USER; /a stays."""
    ctx = _ctx(
        tmp_path,
        "FROM busybox\nCOPY links/ /\nUSER 1234:5678\nWORKDIR /a/c\n",
        {"a": "/b"},
    )
    root = lb.rootfs(ctx)
    assert _is_link(root / "a", "/b")
    for path in ("b", "b/c"):
        st = (root / path).stat()
        assert (root / path).is_dir()
        assert (st.st_uid, st.st_gid) == (1234, 5678)


def test_workdir_on_a_link_to_a_file_fails(lb: Layerbuild, tmp_path: Path) -> None:
    """As in BuildKit (mkdir: not a directory), a WORKDIR that names a file is an error."""
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY links/ /\nWORKDIR /conf\n", {"conf": "/etc/passwd"})
    proc = lb("build", "-t", "x:1", ctx)
    assert proc.returncode == 4, proc.stderr
    assert "/etc/passwd" in proc.stderr and "not a directory" in proc.stderr


def test_workdir_through_a_link_loop_fails(lb: Layerbuild, tmp_path: Path) -> None:
    """A link that leads back to itself ends after 40 hops with a clear error."""
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY links/ /\nWORKDIR /loop/x\n", {"loop": "/loop"})
    proc = lb("build", "-t", "x:1", ctx)
    assert proc.returncode != 0
    assert "too many levels of symbolic links" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("target", ["/srv/app", "../srv/app"])
@pytest.mark.parametrize("existing", [False, True])
def test_copy_into_a_link_writes_into_its_target(
    lb: Layerbuild, tmp_path: Path, target: str, existing: bool
) -> None:
    """COPY x /app/ with /app -> /srv/app (there or not) writes /srv/app/x; --chown owns what
    the COPY makes, and the link stays a link."""
    first = "COPY f.txt /srv/app/old.txt\n" if existing else ""
    ctx = _ctx(
        tmp_path,
        f"FROM busybox\n{first}COPY links/ /\nCOPY --chown=1234:5678 f.txt /app/\n",
        {"app": target},
    )
    root = lb.rootfs(ctx)
    assert _is_link(root / "app", target)
    st = (root / "srv/app/f.txt").stat()
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    owner = (root / "srv/app").stat()
    assert (owner.st_uid, owner.st_gid) == ((0, 0) if existing else (1234, 5678))
    assert os.lstat(root / "app").st_uid == 0


@pytest.mark.root
@pytest.mark.overlay
def test_workdir_on_a_link_made_by_run(lb: Layerbuild, tmp_path: Path) -> None:
    """The reported case: `RUN ln -sf /var/lib/tempest /tempest` then `WORKDIR /tempest`."""
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\nRUN ln -sf /var/lib/tempest /tempest\n"
            "WORKDIR /tempest\nRUN pwd -P > /where\n"
        },
    )
    root = lb.rootfs(ctx)
    assert _is_link(root / "tempest", "/var/lib/tempest")
    assert (root / "var/lib/tempest").is_dir()
    assert (root / "where").read_text() == "/var/lib/tempest\n"
