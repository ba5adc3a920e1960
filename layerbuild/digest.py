"""Digests ("sha256:<hex>") and canonical JSON: the identity of everything in an image."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

_DIGEST_RE = re.compile(r"^(sha256|sha512):([a-f0-9]+)$")
_HEX_LEN = {"sha256": 64, "sha512": 128}


class Digest(str):
    """A validated content digest. Being a str, it serializes into JSON as itself."""

    __slots__ = ()

    def __new__(cls, value: str) -> Digest:
        m = _DIGEST_RE.match(value)
        if not m or len(m.group(2)) != _HEX_LEN[m.group(1)]:
            raise ValueError(f"not a valid digest: {value!r} (expected 'sha256:' + 64 hex digits)")
        return super().__new__(cls, value)

    @property
    def algorithm(self) -> str:
        return self.split(":", 1)[0]

    @property
    def hex(self) -> str:
        return self.split(":", 1)[1]

    @property
    def short(self) -> str:
        return self.hex[:12]

    @classmethod
    def from_hash(cls, h: Any) -> Digest:
        """A Digest from a finished hashlib object (sha256 or sha512)."""
        if h.name in _HEX_LEN:  # hexdigest() is valid by construction: skip the regex
            return str.__new__(cls, f"{h.name}:{h.hexdigest()}")
        return cls(f"{h.name}:{h.hexdigest()}")

    @classmethod
    def of_sha256(cls, raw: bytes) -> Digest:
        """The Digest of a raw 32-byte sha256 value (no parsing: a hot path of rebuilds)."""
        if len(raw) != 32:
            raise ValueError(f"not a sha256 value: {len(raw)} bytes")
        return str.__new__(cls, "sha256:" + raw.hex())


def sha256_bytes(data: bytes) -> Digest:
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


def is_digest(value: str) -> bool:
    m = _DIGEST_RE.match(value)
    return bool(m) and len(m.group(2)) == _HEX_LEN[m.group(1)] if m else False


def canonical_json(obj: Any) -> bytes:
    """JSON with sorted keys, no insignificant whitespace and UTF-8 text.

    Image configs and manifests are hashed as bytes, so the same value must always give the same
    bytes on every machine and Python version.
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
