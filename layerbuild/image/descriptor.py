"""OCI content descriptors and platforms."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from layerbuild.digest import Digest
from layerbuild.errors import ImageFormatError
from layerbuild.image.platformmatch import match_rank


@dataclass(frozen=True, slots=True)
class Platform:
    """An OCI platform: os, architecture and variant."""

    architecture: str = "amd64"
    os: str = "linux"
    variant: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Platform:
        return cls(
            architecture=str(obj.get("architecture", "")),
            os=str(obj.get("os", "")),
            variant=obj.get("variant") or None,
        )

    @classmethod
    def parse(cls, text: str) -> Platform:
        """'linux/amd64', 'linux/arm64/v8' → Platform; ValueError when malformed."""
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(
                f"bad platform {text!r}: expected os/arch[/variant], e.g. linux/amd64"
            )
        return cls(
            os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else None
        )

    def __str__(self) -> str:
        s = f"{self.os}/{self.architecture}"
        return f"{s}/{self.variant}" if self.variant else s


@dataclass(frozen=True, slots=True)
class Descriptor:
    """An OCI descriptor: what a blob is, its digest and size."""

    media_type: str
    digest: Digest
    size: int
    annotations: tuple[tuple[str, str], ...] = ()
    platform: Platform | None = None
    urls: tuple[str, ...] = field(default=())

    def annotation(self, key: str) -> str | None:
        return dict(self.annotations).get(key)

    def with_annotations(self, annotations: dict[str, str]) -> Descriptor:
        return Descriptor(
            self.media_type,
            self.digest,
            self.size,
            tuple(sorted(annotations.items())),
            self.platform,
            self.urls,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = self.platform.to_json()
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Descriptor:
        try:
            platform = obj.get("platform")
            return cls(
                media_type=str(obj["mediaType"]),
                digest=Digest(str(obj["digest"])),
                size=int(obj["size"]),
                annotations=tuple(sorted((obj.get("annotations") or {}).items())),
                platform=Platform.from_json(platform) if platform else None,
                urls=tuple(obj.get("urls") or ()),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ImageFormatError(f"invalid descriptor {obj!r}: {e}") from e


DEFAULT_PLATFORM = Platform(architecture="amd64", os="linux")


def platform_matches(have: Platform | None, want: Platform) -> bool:
    """An image of `have` serves `want`, by containerd's matcher rules (image/platformmatch:
    `arm64` is `arm64/v8`, an older arm or amd64 variant is accepted)."""
    return match_rank(have, want) is not None


def choose_platform(
    entries: Iterable[Descriptor], platform: Platform | None
) -> tuple[Descriptor | None, str]:
    """The index entry for `platform` (default linux/amd64; an index of one image: that one),
    the best match first, or None, with the available platforms as text for the error the
    caller raises."""
    # BuildKit attestation manifests carry the platform unknown/unknown: never an image
    images = [m for m in entries if not (m.platform and m.platform.os == "unknown")]
    want = platform or DEFAULT_PLATFORM
    ranked = [(rank, n) for n, m in enumerate(images) if (rank := match_rank(m.platform, want))
              is not None]
    if ranked:
        return images[min(ranked)[1]], ""
    if platform is None and len(images) == 1:
        return images[0], ""
    return None, ", ".join(str(m.platform) for m in images if m.platform) or "none"
