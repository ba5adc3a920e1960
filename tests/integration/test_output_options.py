"""--output's image options (compression=, oci-mediatypes=, annotation.*), --progress rawjson
and --metadata-file, through the real CLI; layouts checked by skopeo, umoci and
oci-image-tool (notes on their versions: tests/integration/test_export_tools.py)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard

from tests.support.cli import Layerbuild, OciImage, make_context, run_tool, unpack

pytestmark = pytest.mark.tools

DOCKERFILE = "FROM busybox\nCOPY app /app/\nRUN echo built > /app/made\n"
FILES = {"Dockerfile": DOCKERFILE, "app/hello.txt": "hello\n"}
GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def _layers(image: OciImage) -> list[dict[str, Any]]:
    layers: list[dict[str, Any]] = image.manifest()["layers"]
    return layers


def test_zstd_output_has_zstd_layers_the_tools_accept(lb: Layerbuild, tmp_path: Path) -> None:
    """compression=zstd converts the layers the build made (base layers keep gzip, as in
    BuildKit); the config is the same bytes; skopeo and umoci read the image."""
    ctx = make_context(tmp_path, FILES)
    out = tmp_path / "zstd.tar"
    lb.ok("build", "-t", "z:1", "-o", f"type=oci,dest={out},compression=zstd", ctx)
    image = OciImage(out)
    types = [layer["mediaType"] for layer in _layers(image)]
    assert types[0] == GZIP  # busybox's own layer
    assert types[1:] == [ZSTD, ZSTD]
    for layer in _layers(image)[1:]:
        assert image.blob(layer["digest"])[:4] == b"\x28\xb5\x2f\xfd"
    assert image.manifest()["config"]["digest"] == lb.inspect("z:1")["ConfigDigest"]
    assert [m.name for m in image.layer_members(-1)] == ["app", "app/made"]
    info = json.loads(run_tool("skopeo", "inspect", f"oci-archive:{out}:1"))
    assert info["Layers"] == [layer["digest"] for layer in _layers(image)]
    diff_ids = image.config()["rootfs"]["diff_ids"]
    for layer, diff_id in zip(_layers(image)[1:], diff_ids[1:], strict=True):
        plain = (
            zstandard.ZstdDecompressor().decompressobj().decompress(image.blob(layer["digest"]))
        )
        assert "sha256:" + hashlib.sha256(plain).hexdigest() == diff_id
    # oci-image-tool 1.0.0~rc1 and umoci 0.4.7 predate the zstd media type: skopeo copies the
    # image (decompressing our zstd layers) into a gzip layout that umoci then unpacks
    gzipped = tmp_path / "gzipped"
    run_tool("skopeo", "copy", "--dest-compress-format", "gzip", f"oci-archive:{out}:1",
             f"oci:{gzipped}:1")  # fmt: skip
    assert (unpack(gzipped, "1") / "app/made").read_text() == "built\n"


def test_force_compression_converts_every_layer_and_reuses_them(
    lb: Layerbuild, tmp_path: Path
) -> None:
    """force-compression=true converts the base layer too; a second export finds the converted
    blobs in the store and writes the same bytes."""
    ctx = make_context(tmp_path, FILES)
    spec = "type=oci,dest={},compression=zstd,force-compression=true,compression-level=19"
    lb.ok("build", "-t", "f:1", "-o", spec.format(tmp_path / "a.tar"), ctx)
    blobs = set((lb.store / "blobs/sha256").iterdir())
    lb.ok("build", "-t", "f:1", "-o", spec.format(tmp_path / "b.tar"), ctx)
    assert set((lb.store / "blobs/sha256").iterdir()) == blobs  # nothing compressed anew
    a, b = OciImage(tmp_path / "a.tar"), OciImage(tmp_path / "b.tar")
    assert [layer["mediaType"] for layer in _layers(a)] == [ZSTD] * 3
    assert a.index() == b.index()
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_uncompressed_and_docker_media_types(lb: Layerbuild, tmp_path: Path) -> None:
    """oci-mediatypes=false gives Docker media types for the manifest, config and layers;
    compression=uncompressed stores the made layers as plain tars."""
    ctx = make_context(tmp_path, FILES)
    out = tmp_path / "docker.tar"
    spec = f"type=docker,dest={out},oci-mediatypes=false,compression=uncompressed"
    lb.ok("build", "-t", "d:1", "-o", spec, ctx)
    image = OciImage(out)
    manifest = image.manifest()
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert manifest["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    types = [layer["mediaType"] for layer in manifest["layers"]]
    assert (
        types
        == ["application/vnd.docker.image.rootfs.diff.tar.gzip"]
        + ["application/vnd.docker.image.rootfs.diff.tar"] * 2
    )
    plain = io.BytesIO(image.blob(manifest["layers"][1]["digest"]))
    with tarfile.open(fileobj=plain, mode="r:") as tar:
        assert "app/hello.txt" in tar.getnames()
    info = json.loads(run_tool("skopeo", "inspect", "--raw", f"docker-archive:{out}"))
    assert info["mediaType"] == manifest["mediaType"]


def test_annotations_land_where_named(lb: Layerbuild, tmp_path: Path) -> None:
    """annotation.K (manifest), annotation-manifest-descriptor.K, annotation-index.K and
    annotation-index-descriptor.K each land on their level; a quoted value keeps its comma."""
    ctx = make_context(tmp_path, FILES)
    out = tmp_path / "ann"
    spec = (
        f"type=oci,dest={out},tar=false,annotation.org.example.m=one,"
        '"annotation-manifest[linux/amd64].org.example.p=a,b",'
        "annotation-manifest-descriptor.org.example.md=two,"
        "annotation-index.org.example.i=three,annotation-index-descriptor.org.example.id=four"
    )
    lb.ok("build", "-t", "a:1", "-o", spec, ctx)
    image = OciImage(out)
    entry = image.index()["manifests"][0]
    assert entry["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert entry["annotations"]["org.example.id"] == "four"
    index = image.json(entry["digest"])
    assert index["annotations"] == {"org.example.i": "three"}
    child = index["manifests"][0]
    assert child["annotations"] == {"org.example.md": "two"}
    manifest = image.json(child["digest"])
    assert manifest["annotations"] == {"org.example.m": "one", "org.example.p": "a,b"}
    assert "Validation succeeded" in run_tool(
        "oci-image-tool", "validate", "--type", "image", "--ref", "name=1", out
    )


@pytest.mark.parametrize(
    ("option", "named"),
    [
        ("compression=bogus", "compression='bogus'"),
        ("compression-level=x", "compression-level='x'"),
        ("compression=gzip,compression-level=10", "use 0-9"),
        ("compression=zstd,compression-level=23", "use 0-22"),
        ("force-compression=maybe", "force-compression='maybe'"),
        ("oci-mediatypes=yes", "oci-mediatypes='yes'"),
        ("annotation-bogus.k=v", "unknown annotation type 'bogus'"),
        ("annotation-manifest[linux/arm64].k=v", "no platform linux/arm64"),
        ("oci-mediatypes=false,annotation-index.k=v", "oci-mediatypes=false"),
        ("colour=blue", "unknown option(s) colour"),
    ],
)
def test_bad_option_is_a_usage_error(
    lb: Layerbuild, tmp_path: Path, option: str, named: str
) -> None:
    """An unknown key or value exits 2 before building, naming it and the accepted values."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nLABEL x=1\n"})
    proc = lb("build", "-t", "bad:1", "-o", f"type=oci,dest={tmp_path / 'x.tar'},{option}", ctx)
    assert proc.returncode == 2, proc.stderr
    assert named in proc.stderr
    assert "--output" in proc.stderr and "Traceback" not in proc.stderr
    assert "bad:1" not in lb.image_names()


def test_type_image_with_options_retags_the_converted_image(
    lb: Layerbuild, tmp_path: Path
) -> None:
    """-o type=image,compression=zstd moves the -t names to the image as converted."""
    ctx = make_context(tmp_path, FILES)
    proc = lb.ok("build", "-q", "-t", "i:1", "-o", "type=image,compression=zstd", ctx)
    built = proc.stdout.strip()
    tagged = lb.inspect("i:1")["Digest"]
    assert tagged != built
    out = tmp_path / "i.tar"
    lb.ok("save", "i:1", "-o", out)
    layers = OciImage(out).manifest()["layers"]
    assert [layer["mediaType"] for layer in layers] == [GZIP, ZSTD, ZSTD]


def test_image_options_on_a_rootfs_output_are_refused(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\n"})
    proc = lb("build", "-o", f"type=local,dest={tmp_path / 'r'},compression=zstd", ctx)
    assert proc.returncode == 2
    assert "type=local is not an image output" in proc.stderr


def test_metadata_file_names_the_exported_image(lb: Layerbuild, tmp_path: Path) -> None:
    """--metadata-file holds buildx's keys; with compression=zstd the digest and descriptor
    are the exported image's, the config digest the stored one's."""
    ctx = make_context(tmp_path, FILES)
    out, meta = tmp_path / "m.tar", tmp_path / "meta.json"
    spec = f"type=oci,dest={out},compression=zstd"
    lb.ok("build", "-t", "m:1", "-o", spec, "--metadata-file", meta, ctx)
    data = json.loads(meta.read_text())
    assert set(data) == {
        "buildx.build.ref",
        "containerimage.config.digest",
        "containerimage.descriptor",
        "containerimage.digest",
        "image.name",
    }
    entry = OciImage(out).index()["manifests"][0]
    assert data["containerimage.digest"] == entry["digest"] != lb.inspect("m:1")["Digest"]
    assert data["containerimage.descriptor"]["digest"] == entry["digest"]
    assert data["containerimage.descriptor"]["platform"] == {
        "architecture": "amd64",
        "os": "linux",
    }
    assert data["containerimage.config.digest"] == lb.inspect("m:1")["ConfigDigest"]
    assert data["image.name"] == "m:1"
    builder, node, ref = data["buildx.build.ref"].split("/")
    assert (builder, node, len(ref)) == ("layerbuild", "local", 25)
    assert not list(tmp_path.glob(".meta.json.*"))  # written through a temporary name


def test_progress_rawjson_is_one_json_object_per_line(lb: Layerbuild, tmp_path: Path) -> None:
    """Every stderr line of --progress rawjson parses as JSON, one per event, the output note
    included."""
    ctx = make_context(tmp_path, FILES)
    proc = lb.ok(
        "build", "--progress", "rawjson", "-t", "r:1", "-o", f"type=oci,dest={tmp_path / 'r.tar'}",
        ctx,
    )  # fmt: skip
    events = [json.loads(line) for line in proc.stderr.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("StepStarted") == kinds.count("StepDone") == 3
    assert kinds[-2] == "BuildDone" and kinds[-1] == "Log"
    done = events[-2]
    assert done["digest"] == lb.inspect("r:1")["Digest"]
    assert done["tags"] == ["r:1"]
    started = next(e for e in events if e["event"] == "StepStarted" and e["index"] == 2)
    assert started["text"] == "COPY app /app/" and started["line"] == 2
