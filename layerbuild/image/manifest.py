"""Image manifests and indexes; their canonical bytes are the source of their digests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from layerbuild.digest import Digest, canonical_json, sha256_bytes
from layerbuild.errors import ImageFormatError
from layerbuild.image import mediatypes as mt
from layerbuild.image.descriptor import Descriptor


@dataclass(frozen=True, slots=True)
class Layer:
    """A layer blob: diff_id is the digest of the uncompressed tar, digest of the blob."""

    diff_id: Digest
    digest: Digest
    size: int
    media_type: str

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size)


def _load(data: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except ValueError as e:
        raise ImageFormatError(f"{what} is not JSON: {e}") from e
    if not isinstance(obj, dict):
        raise ImageFormatError(f"{what} is not a JSON object")
    return obj


@dataclass(frozen=True, slots=True)
class Manifest:
    """An OCI image manifest: the config and layers of one platform's image."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = mt.OCI_MANIFEST
    annotations: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    def descriptor(self, **annotations: str) -> Descriptor:
        data = self.to_bytes()
        return Descriptor(
            self.media_type, sha256_bytes(data), len(data), tuple(sorted(annotations.items()))
        )

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str | None = None) -> Manifest:
        obj = _load(data, "manifest")
        try:
            return cls(
                config=Descriptor.from_json(obj["config"]),
                layers=tuple(Descriptor.from_json(x) for x in obj.get("layers") or ()),
                media_type=obj.get("mediaType") or media_type or mt.OCI_MANIFEST,
                annotations=tuple(sorted((obj.get("annotations") or {}).items())),
            )
        except KeyError as e:
            raise ImageFormatError(f"manifest has no {e.args[0]!r}") from e


@dataclass(frozen=True, slots=True)
class Index:
    """An OCI image index: one manifest per platform."""

    manifests: tuple[Descriptor, ...]
    media_type: str = mt.OCI_INDEX
    annotations: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [m.to_json() for m in self.manifests],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes) -> Index:
        obj = _load(data, "index")
        return cls(
            manifests=tuple(Descriptor.from_json(x) for x in obj.get("manifests") or ()),
            media_type=obj.get("mediaType") or mt.OCI_INDEX,
            annotations=tuple(sorted((obj.get("annotations") or {}).items())),
        )
