from __future__ import annotations

import pytest

from layerbuild.errors import InvalidReference, LayerbuildError
from layerbuild.registry.reference import (
    Reference,
    normalize_tag,
    parse_reference,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("busybox", "docker.io", "library/busybox", "latest", None),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
        ("team/app", "docker.io", "team/app", "latest", None),
        ("docker.io/library/busybox", "docker.io", "library/busybox", "latest", None),
        ("index.docker.io/busybox", "docker.io", "library/busybox", "latest", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/x", "localhost:5000", "x", "latest", None),
        ("localhost:5000/team/x:v2", "localhost:5000", "team/x", "v2", None),
        ("ghcr.io/o/r/deep:1", "ghcr.io", "o/r/deep", "1", None),
        ("Registry.Example/app", "Registry.Example", "app", "latest", None),
        ("[::1]:5000/app", "[::1]:5000", "app", "latest", None),
        (f"busybox@{DIGEST}", "docker.io", "library/busybox", None, DIGEST),
        (f"busybox:1@{DIGEST}", "docker.io", "library/busybox", "1", DIGEST),
        ("a.b_c__d-e---f", "docker.io", "library/a.b_c__d-e---f", "latest", None),
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),
        ("app:TAG_1.x-y", "docker.io", "library/app", "TAG_1.x-y", None),
    ],
)
def test_parse_table(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    assert parse_reference(text) == Reference(registry, repository, tag, digest)


def test_full_and_familiar_names() -> None:
    ref = parse_reference("busybox")
    assert ref.full_name == "docker.io/library/busybox:latest"
    assert ref.familiar == "busybox:latest"
    assert parse_reference("team/app:1").familiar == "team/app:1"
    assert parse_reference("docker.io/library/team/x").familiar_name == "library/team/x"
    assert parse_reference("localhost:5000/x").full_name == "localhost:5000/x:latest"
    assert parse_reference(f"x@{DIGEST}").full_name == f"docker.io/library/x@{DIGEST}"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("Busybox", "must be lowercase"),
        ("docker.io/Team/app", "must be lowercase"),
        ("", "empty"),
        (" app", "white space"),
        ("app:", "tag ''"),
        ("app:-x", "tag '-x'"),
        ("app:" + "x" * 129, "1-128"),
        ("app@sha256:abc", "is not a digest"),
        ("a//b", "path component ''"),
        ("a_/b", "path component 'a_'"),
        ("-app", "path component '-app'"),
        ("app___x", "path component"),
        ("bad_host.io:port/app", "not a valid host"),
        (":1", "missing"),
        ("a/" * 130 + "b", "longer than 255"),
    ],
)
def test_invalid_references(text: str, fragment: str) -> None:
    with pytest.raises(InvalidReference) as err:
        parse_reference(text)
    assert fragment in err.value.message
    assert err.value.hint and "name[:tag]" in err.value.hint
    assert isinstance(err.value, LayerbuildError)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("app", "app:latest"),
        ("app:1", "app:1"),
        ("localhost:5000/x", "localhost:5000/x:latest"),
        ("docker.io/library/busybox", "busybox:latest"),
        ("docker.io/team/app:2", "team/app:2"),
        ("ghcr.io/o/app", "ghcr.io/o/app:latest"),
    ],
)
def test_normalize_tag(name: str, expected: str) -> None:
    assert normalize_tag(name) == expected
    assert normalize_tag(expected) == expected  # idempotent


def test_normalize_tag_refuses_digest() -> None:
    with pytest.raises(InvalidReference, match="tag is needed"):
        normalize_tag(f"app@{DIGEST}")
