"""`build --label` and `build --annotation`, read back by skopeo, umoci and oci-image-tool.

Labels land in the final image's config over the Dockerfile's LABELs and, as in BuildKit, in
no step's key. Annotations go where buildx puts them: the manifest by default, the manifest's
descriptor, and an index (with its descriptor in index.json) when index levels are asked for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Layerbuild, OciImage, make_context, run_tool, unpack

pytestmark = pytest.mark.tools

DOCKERFILE = "FROM busybox\nLABEL a=dockerfile b=dockerfile\nCOPY app.txt /app.txt\n"


def _steps(lb: Layerbuild, ctx: Path, *args: str) -> list[dict[str, Any]]:
    report = ctx.parent / "report.json"
    lb.build(ctx, "-t", "lab:1", "--report", report, *args)
    steps = json.loads(report.read_text())["steps"]
    assert isinstance(steps, list)
    return steps


def test_labels_override_the_dockerfile_and_leave_the_cache_alone(
    lb: Layerbuild, tmp_path: Path
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": DOCKERFILE, "app.txt": "hi\n"})
    first = _steps(lb, ctx)
    plain = lb.config("lab:1")
    steps = _steps(lb, ctx, "--label", "a=cli", "--label", "new=x=y")
    assert [s["cache"] for s in steps] == ["hit"] * len(first)
    config = lb.config("lab:1")
    assert config["config"]["Labels"] == {"a": "cli", "b": "dockerfile", "new": "x=y"}
    assert config["history"] == plain["history"]  # no step of its own
    assert [s["key"] for s in steps] == [s["key"] for s in first]
    out = lb.build_oci(ctx, "--label", "a=cli", tag="lab:2")
    skopeo = json.loads(run_tool("skopeo", "inspect", f"oci-archive:{out}:2"))
    assert skopeo["Labels"]["a"] == "cli"


def test_label_needs_key_value(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": DOCKERFILE, "app.txt": "hi\n"})
    proc = lb("build", "--label", "novalue", ctx)
    assert proc.returncode == 2 and "'novalue' is not NAME=VALUE" in proc.stderr


def test_manifest_annotations_by_default(lb: Layerbuild, tmp_path: Path) -> None:
    """No type: the manifest, as skopeo shows it; manifest-descriptor: index.json's entry.
    The image stays a plain manifest that oci-image-tool validates and umoci unpacks."""
    ctx = make_context(tmp_path, {"Dockerfile": DOCKERFILE, "app.txt": "hi\n"})
    layout = tmp_path / "layout"
    lb.build(
        ctx,
        "-t",
        "ann:1",
        "--annotation",
        "org.opencontainers.image.title=App",
        "--annotation",
        "manifest:org.example.both=m",
        "--annotation",
        "manifest-descriptor:org.example.desc=d",
        "--annotation",
        "manifest[linux/amd64]:org.example.plat=p",
        "-o",
        f"type=oci,dest={layout},tar=false",
    )
    raw = json.loads(run_tool("skopeo", "inspect", "--raw", f"oci:{layout}:1"))
    assert raw["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert raw["annotations"] == {
        "org.opencontainers.image.title": "App",
        "org.example.both": "m",
        "org.example.plat": "p",
    }
    (entry,) = OciImage(layout).index()["manifests"]
    assert entry["annotations"]["org.example.desc"] == "d"
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "1"
    out = run_tool("oci-image-tool", "validate", "--type", "image", "--ref", "name=1", layout)
    assert "Validation succeeded" in out
    assert (unpack(layout, "1") / "app.txt").read_text() == "hi\n"


def test_index_annotations_make_an_index(lb: Layerbuild, tmp_path: Path) -> None:
    """index: and index-descriptor: wrap the manifest in a one-platform index, as buildx's
    images are; the store, the OCI tarball and skopeo all see the index; umoci unpacks it."""
    ctx = make_context(tmp_path, {"Dockerfile": DOCKERFILE, "app.txt": "hi\n"})
    out = lb.build_oci(
        ctx,
        "--annotation",
        "index,manifest:org.example.both=1",
        "--annotation",
        "index-descriptor:org.example.top=2",
        "--annotation",
        "manifest-descriptor:org.example.entry=3",
        tag="idx:1",
    )
    ref = f"oci-archive:{out}:1"
    index = json.loads(run_tool("skopeo", "inspect", "--raw", ref))
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert index["annotations"] == {"org.example.both": "1"}
    (child,) = index["manifests"]
    assert child["annotations"] == {"org.example.entry": "3"}
    assert child["platform"] == {"architecture": "amd64", "os": "linux"}
    image = OciImage(out)
    (top,) = image.index()["manifests"]
    assert top["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert top["annotations"]["org.example.top"] == "2"
    assert image.json(child["digest"])["annotations"] == {"org.example.both": "1"}
    assert lb.inspect("idx:1")["Digest"] == child["digest"]  # the platform's manifest
    info = json.loads(run_tool("skopeo", "inspect", ref))
    assert info["Digest"] == top["digest"]
    layout = tmp_path / "layout"
    lb.ok("save", "idx:1", "-o", layout, "--format", "oci-dir")
    assert (unpack(layout, "1") / "app.txt").read_text() == "hi\n"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("novalue", "expected key=value"),
        ("layer:a=1", "unknown annotation type 'layer'"),
        ("manifest[linux/arm64]:a=1", "no platform linux/arm64 in this build"),
    ],
)
def test_bad_annotations_are_cli_errors(
    lb: Layerbuild, tmp_path: Path, value: str, why: str
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": DOCKERFILE, "app.txt": "hi\n"})
    proc = lb("build", "--annotation", value, ctx)
    assert proc.returncode == 2
    assert "--annotation" in proc.stderr and why in proc.stderr
