from __future__ import annotations

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.errors import RegistryError
from layerbuild.image import mediatypes as mt
from layerbuild.image.descriptor import Descriptor, Platform
from layerbuild.image.manifest import Index
from layerbuild.registry.pull import select_manifest
from layerbuild.registry.reference import parse_reference

REF = parse_reference("busybox")


def _entry(name: str, platform: Platform | None, media_type: str = mt.OCI_MANIFEST) -> Descriptor:
    return Descriptor(media_type, sha256_bytes(name.encode()), 1, platform=platform)


AMD = _entry("amd", Platform("amd64", "linux"))
ARM7 = _entry("arm7", Platform("arm", "linux", "v7"))
ARM64 = _entry("arm64", Platform("arm64", "linux", "v8"), mt.DOCKER_MANIFEST)
ATTEST = _entry("att", Platform("unknown", "unknown"))


def test_default_is_linux_amd64() -> None:
    assert select_manifest(Index((ATTEST, ARM7, AMD)), None, REF) == AMD


def test_variant_matches_only_when_asked() -> None:
    index = Index((AMD, ARM7, ARM64))
    assert select_manifest(index, Platform("arm64", "linux"), REF) == ARM64
    assert select_manifest(index, Platform("arm", "linux", "v7"), REF) == ARM7
    with pytest.raises(RegistryError, match="linux/arm/v6"):
        select_manifest(index, Platform("arm", "linux", "v6"), REF)


def test_single_image_index_without_a_platform() -> None:
    only = _entry("only", None)
    assert select_manifest(Index((only, ATTEST)), None, REF) == only
    with pytest.raises(RegistryError, match="available: none"):
        select_manifest(Index((only,)), Platform("arm64", "linux"), REF)
