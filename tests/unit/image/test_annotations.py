"""--annotation values sorted into levels as buildx and BuildKit do."""

from __future__ import annotations

import pytest

from layerbuild.errors import AnnotationSpecError
from layerbuild.image.annotations import Annotations, parse_annotations
from layerbuild.image.descriptor import Platform

AMD64 = Platform()


def test_no_type_means_the_manifest() -> None:
    got = parse_annotations(["org.opencontainers.image.title=App", "b=x=y"], AMD64)
    assert got == Annotations(manifest=(("b", "x=y"), ("org.opencontainers.image.title", "App")))
    assert not got.wants_index


def test_types_and_several_at_once() -> None:
    got = parse_annotations(
        [
            "index:i=1",
            "manifest-descriptor:md=2",
            "index-descriptor:id=3",
            "manifest,index:both=4",
            "manifest:both=5",  # later wins for the manifest only
        ],
        AMD64,
    )
    assert got.manifest == (("both", "5"),)
    assert got.index == (("both", "4"), ("i", "1"))
    assert got.manifest_descriptor == (("md", "2"),)
    assert got.index_descriptor == (("id", "3"),)
    assert got.wants_index


def test_platform_qualifier() -> None:
    got = parse_annotations(["manifest[linux/amd64]:a=1", "index[linux/arm64]:b=2"], AMD64)
    assert got.manifest == (("a", "1"),) and got.index == (("b", "2"),)
    with pytest.raises(AnnotationSpecError, match="no platform linux/arm64"):
        parse_annotations(["manifest[linux/arm64]:a=1"], AMD64)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("novalue", "expected key=value"),
        ("layer:a=1", "unknown annotation type 'layer'"),
        ("Manifest:a=1", "invalid annotation type"),
        ("manifest[linux]:a=1", "invalid platform"),
        ("manifest:=1", "invalid annotation key"),
    ],
)
def test_bad_annotations(text: str, why: str) -> None:
    with pytest.raises(AnnotationSpecError, match=why):
        parse_annotations([text], AMD64)
