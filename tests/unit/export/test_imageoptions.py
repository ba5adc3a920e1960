"""--output's image options: every key BuildKit's image exporters take, and the refusals."""

from __future__ import annotations

import pytest

from layerbuild.errors import OutputSpecError
from layerbuild.export.imageoptions import ImageOptions, parse_image_options
from layerbuild.export.outputs import OutputSpec, parse_output
from layerbuild.image.annotations import Annotations
from layerbuild.image.descriptor import Platform

AMD64 = Platform()


def _opts(**fields: str) -> ImageOptions:
    return parse_image_options(fields, AMD64)


def test_no_options_change_nothing() -> None:
    assert _opts() == ImageOptions()
    assert not ImageOptions().changes_image


@pytest.mark.parametrize(
    ("value", "internal"), [("gzip", "gzip"), ("zstd", "zstd"), ("uncompressed", "none")]
)
def test_compression_values(value: str, internal: str) -> None:
    opts = _opts(compression=value)
    assert (opts.compression, opts.level, opts.force) == (internal, None, False)
    assert opts.changes_image


def test_compression_levels() -> None:
    assert _opts(**{"compression": "zstd", "compression-level": "19"}).level == 19
    assert _opts(**{"compression": "zstd", "compression-level": "0"}).level == 0
    # BuildKit's gzip levels 0-9 onto isal's 0-3
    gzip = [_opts(**{"compression": "gzip", "compression-level": str(n)}).level for n in range(10)]
    assert gzip == [0, 1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_force_and_level_alone_mean_gzip_as_in_buildkit() -> None:
    assert _opts(**{"force-compression": "true"}).compression == "gzip"
    assert _opts(**{"force-compression": ""}).force  # a bare key is true, as BuildKit reads it
    assert _opts(**{"compression-level": "9"}) == ImageOptions(compression="gzip", level=3)
    assert not _opts(**{"force-compression": "false"}).force


@pytest.mark.parametrize("value", ["1", "t", "T", "TRUE", "true", "True"])
def test_go_booleans_true(value: str) -> None:
    assert _opts(**{"force-compression": value}).force
    assert _opts(**{"oci-mediatypes": value}).oci_mediatypes


@pytest.mark.parametrize("value", ["0", "f", "F", "FALSE", "false", "False"])
def test_go_booleans_false(value: str) -> None:
    assert not _opts(**{"oci-mediatypes": value}).oci_mediatypes


def test_annotation_levels() -> None:
    opts = _opts(
        **{
            "annotation.a": "1",
            "annotation-manifest.b": "2",
            "annotation-manifest[linux/amd64].c": "3",
            "annotation-manifest-descriptor.d": "4",
            "annotation-index.e": "5",
            "annotation-index-descriptor.f": "6",
        }
    )
    assert opts.annotations == Annotations(
        manifest=(("a", "1"), ("b", "2"), ("c", "3")),
        index=(("e", "5"),),
        manifest_descriptor=(("d", "4"),),
        index_descriptor=(("f", "6"),),
    )
    assert opts.changes_image


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"compression": "bogus"}, "compression='bogus' is not supported: use gzip, zstd"),
        ({"compression": "estargz"}, "use gzip, zstd, uncompressed"),
        ({"compression": "zstd", "compression-level": "high"}, "not a whole number"),
        ({"compression": "zstd", "compression-level": "23"}, "use 0-22"),
        ({"compression": "zstd", "compression-level": "-1"}, "use 0-22"),
        ({"compression": "gzip", "compression-level": "10"}, "use 0-9"),
        ({"compression": "uncompressed", "compression-level": "1"}, "no meaning"),
        ({"force-compression": "yes"}, "force-compression='yes' is not a boolean"),
        ({"oci-mediatypes": ""}, "oci-mediatypes='' is not a boolean"),
        ({"annotation-layer.k": "v"}, "unknown annotation type 'layer'"),
        ({"annotation": "v"}, "'annotation' is not an annotation key"),
        ({"annotation.": "v"}, "is not an annotation key"),
        ({"annotation-manifest[linux/arm64].k": "v"}, "no platform linux/arm64"),
        ({"annotation-manifest[bad].k": "v"}, "invalid platform 'bad'"),
        ({"oci-mediatypes": "false", "annotation-index.k": "v"}, "oci-mediatypes=false"),
        ({"oci-mediatypes": "false", "annotation-index-descriptor.k": "v"}, "Docker"),
        ({"oci-mediatypes": "false", "annotation-manifest-descriptor.k": "v"}, "Docker"),
    ],
)
def test_refused(fields: dict[str, str], message: str) -> None:
    with pytest.raises(OutputSpecError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_image_options(fields, AMD64)


def test_docker_media_types_keep_manifest_annotations() -> None:
    opts = _opts(**{"oci-mediatypes": "false", "annotation.k": "v", "compression": "zstd"})
    assert (opts.oci_mediatypes, opts.annotations.manifest) == (False, (("k", "v"),))


# -- through parse_output ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["oci", "docker", "image", "registry"])
def test_image_types_take_the_options(kind: str) -> None:
    dest = ",dest=x.tar" if kind in ("oci", "docker") else ""
    spec = parse_output(f"type={kind}{dest},compression=zstd,force-compression=true")
    assert spec.image == ImageOptions(compression="zstd", force=True)


@pytest.mark.parametrize("kind", ["local", "tar"])
def test_rootfs_types_refuse_them(kind: str) -> None:
    with pytest.raises(OutputSpecError, match=f"type={kind} is not an image output"):
        parse_output(f"type={kind},dest=x,compression=zstd")


def test_fields_are_csv_so_a_quoted_value_holds_a_comma() -> None:
    spec = parse_output('type=oci,dest=x.tar,"annotation.org.example.list=a,b",name=app')
    assert spec.image.annotations.manifest == (("org.example.list", "a,b"),)
    assert (spec.type, spec.dest) == ("oci", "x.tar")


def test_annotation_keys_keep_their_case() -> None:
    spec = parse_output("type=oci,dest=x.tar,annotation.org.Example=V")
    assert spec.image.annotations.manifest == (("org.Example", "V"),)


def test_platform_of_the_build_is_checked() -> None:
    arm = Platform(architecture="arm64")
    spec = parse_output("type=oci,dest=x,annotation-manifest[linux/arm64].k=v", arm)
    assert spec.image.annotations.manifest == (("k", "v"),)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("type=zip,dest=x", "type must be one of"),
        ("type=oci,dest=x,colour=blue", "unknown option(s) colour"),
        ("type=oci,dest=x,tar=maybe", "tar='maybe'"),
        ("type=oci", "type=oci needs dest=PATH"),
        ('type=oci,"dest=x"y', "not comma-separated values"),
    ],
)
def test_malformed_specs_name_the_accepted_forms(spec: str, message: str) -> None:
    with pytest.raises(OutputSpecError) as e:
        parse_output(spec)
    assert message in str(e.value)
    assert "accepted: type=oci,dest=img.tar" in str(e.value)
    assert "compression=" in str(e.value)


def test_plain_specs_are_unchanged() -> None:
    assert parse_output("out") == OutputSpec("local", "out")
    assert parse_output("type=oci,dest=d,tar=false,push=true") == OutputSpec("oci", "d", False)
