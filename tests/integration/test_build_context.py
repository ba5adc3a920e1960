"""Named build contexts (--build-context NAME=...): OCI layouts and directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, make_context

pytestmark = pytest.mark.tools


def test_oci_layout_context_as_from_base(
    lb: Layerbuild, tmp_path: Path, busybox_layout: Path
) -> None:
    """FROM base with --build-context base=oci-layout://DIR:latest builds on the layout's
    image, even in a store that never loaded it under that name."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM base\nCOPY f /f\n", "f": "f\n"})
    root = lb.rootfs(ctx, "--build-context", f"base=oci-layout://{busybox_layout}:latest")
    assert (root / "bin/busybox").is_file()
    assert (root / "f").read_text() == "f\n"
    history = lb.config("test:1")["history"]
    assert history[0]["created_by"].startswith("fixtures/make_busybox_base.py")
    assert "base:latest" not in lb.image_names()  # imported untagged


def test_oci_layout_context_as_copy_from(
    lb: Layerbuild, tmp_path: Path, busybox_layout: Path
) -> None:
    """COPY --from=tools reads files out of the image of an oci-layout named context."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM scratch\nCOPY --from=tools /etc/group /g\n"})
    root = lb.rootfs(ctx, "--build-context", f"tools=oci-layout://{busybox_layout}:latest")
    assert "app:x:1000:" in (root / "g").read_text()


def test_named_context_overrides_a_stage_and_an_image(
    lb: Layerbuild, tmp_path: Path, busybox_layout: Path
) -> None:
    """A named context with the name of an image in FROM replaces it (as buildx does):
    FROM alpine works with --build-context alpine=oci-layout://..."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM alpine\nLABEL x=y\n"})
    lb.build(ctx, "-t", "o:1", "--build-context", f"alpine=oci-layout://{busybox_layout}:latest")
    assert lb.config("o:1")["config"]["Cmd"] == ["/bin/sh"]


def test_directory_context_with_copy_from(lb: Layerbuild, tmp_path: Path) -> None:
    """--build-context assets=DIR makes DIR readable with COPY --from=assets, outside the
    main context."""
    assets = make_context(tmp_path, {"img/logo.svg": "<svg/>", "css/site.css": "body{}"}, "assets")
    ctx = make_context(
        tmp_path, {"Dockerfile": "FROM busybox\nCOPY --from=assets / /www/\nCOPY f /f\n", "f": "f"}
    )
    root = lb.rootfs(ctx, "--build-context", f"assets={assets}")
    assert (root / "www/img/logo.svg").read_text() == "<svg/>"
    assert (root / "www/css/site.css").read_text() == "body{}"


def test_directory_context_cannot_be_a_from_base(lb: Layerbuild, tmp_path: Path) -> None:
    """FROM of a directory context fails with a message saying FROM needs an image."""
    assets = make_context(tmp_path, {"x": "x"}, "assets")
    ctx = make_context(tmp_path, {"Dockerfile": "FROM assets\n"})
    proc = lb("build", "-t", "x:1", "--build-context", f"assets={assets}", ctx)
    assert proc.returncode != 0
    assert "assets" in proc.stderr and "image" in proc.stderr


def test_layout_with_unknown_tag_fails(
    lb: Layerbuild, tmp_path: Path, busybox_layout: Path
) -> None:
    """An oci-layout context naming a tag the layout does not hold fails, naming the tag."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM base\n"})
    proc = lb(
        "build", "-t", "x:1", "--build-context", f"base=oci-layout://{busybox_layout}:nope", ctx
    )
    assert proc.returncode != 0
    assert "nope" in proc.stderr
    assert "Traceback" not in proc.stderr


REPLACED = """\
FROM busybox AS some-stage
COPY --from=some-stage /marker /copied
COPY not-in-the-context /nowhere
FROM busybox
COPY --from=some-stage /marker /from-stage
"""


def _source_image(lb: Layerbuild, tmp_path: Path) -> None:
    """source:1 in the store: busybox with /marker."""
    src = make_context(
        tmp_path, {"Dockerfile": "FROM busybox\nCOPY m /marker\n", "m": "src\n"}, "src"
    )
    lb.build(src, "-t", "source:1")


def test_a_named_image_context_replaces_the_stage_of_its_name(
    lb: Layerbuild, tmp_path: Path
) -> None:
    """--build-context some-stage=docker-image://source:1 stands for the stage some-stage:
    COPY --from=some-stage reads the image, and none of the stage's instructions run (the
    stage's COPY of a missing file would fail; its COPY --from of itself is no cycle)."""
    _source_image(lb, tmp_path)
    ctx = make_context(tmp_path, {"Dockerfile": REPLACED})
    context = "some-stage=docker-image://source:1"
    steps = lb.report_steps(ctx, "-t", "out:1", "--build-context", context)
    assert {s["stage"] for s in steps} == {"stage-1"}
    root = lb.rootfs(ctx, "--build-context", context)
    assert (root / "from-stage").read_text() == "src\n"


def test_a_replaced_target_stage_is_the_named_image(lb: Layerbuild, tmp_path: Path) -> None:
    """--target some-stage, replaced by a named context, builds that image as it is: its
    FROM is the only step, no instruction of the stage runs."""
    _source_image(lb, tmp_path)
    ctx = make_context(tmp_path, {"Dockerfile": REPLACED})
    context = "some-stage=docker-image://source:1"
    steps = lb.report_steps(
        ctx, "-t", "out:1", "--target", "some-stage", "--build-context", context
    )
    assert [(s["stage"], s["instruction"]) for s in steps] == [
        ("some-stage", "FROM busybox AS some-stage")
    ]
    assert lb.config("out:1")["rootfs"] == lb.config("source:1")["rootfs"]
    assert lb.config("out:1")["history"] == lb.config("source:1")["history"]


def test_a_named_directory_context_replaces_the_stage_of_its_name(
    lb: Layerbuild, tmp_path: Path
) -> None:
    """A directory context with a stage's name is read by COPY --from in its place."""
    assets = make_context(tmp_path, {"marker": "dir\n"}, "assets")
    ctx = make_context(tmp_path, {"Dockerfile": REPLACED})
    root = lb.rootfs(ctx, "--build-context", f"some-stage={assets}")
    assert (root / "from-stage").read_text() == "dir\n"
