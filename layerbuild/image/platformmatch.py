"""Which platforms an image of a given platform can serve, as containerd's platform matcher
decides it (containerd/platforms: `Normalize`, `Only`, `Ordered`).

Names are normalized first: `aarch64` is `arm64`, `x86_64` is `amd64`, `arm64` without a variant
is the same as `arm64/v8` (both normalize to plain `arm64`), `arm` without one is `arm/v7`, and
`amd64/v1` is plain `amd64`. A wanted variant then also accepts the older ones it can run
(`arm/v7` runs `arm/v6` and `arm/v5` images, `amd64/v3` runs v2 and v1), the exact one ranked
first. Unlike containerd's `Only`, an arm64 want
never falls back to a 32-bit `arm` image (containerd's `OnlyStrict`): a builder that silently
produced a 32-bit image for an arm64 target would be worse than an error.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # descriptor.py uses this module: no import of it at run time
    from layerbuild.image.descriptor import Platform

_ARCH_ALIASES = {
    "aarch64": "arm64",
    "x86_64": "amd64",
    "x86-64": "amd64",
    "i386": "386",
    "i686": "386",
    "armhf": "arm",
    "armel": "arm",
}
_DEFAULT_VARIANT = {"arm": "v7"}
# variants that say no more than the architecture itself
_BASE_VARIANT = {"arm64": ("v8", "v8.0"), "amd64": ("v1",)}
# the variants older than each, newest first: what an image of that variant may be built for
_OLDER = {
    "arm": ("v8", "v7", "v6", "v5"),
    "amd64": ("v4", "v3", "v2", "v1"),
}


def normalize(platform: Platform) -> Platform:
    """The canonical spelling of a platform (containerd's `Normalize`)."""
    os_ = platform.os.lower()
    arch = platform.architecture.lower()
    variant = (platform.variant or "").lower()
    if arch in ("armhf", "armel") and not variant:
        variant = "v7" if arch == "armhf" else "v6"
    arch = _ARCH_ALIASES.get(arch, arch)
    if variant and variant[0].isdigit():
        variant = "v" + variant  # arm64/8 is arm64/v8
    if not variant:
        variant = _DEFAULT_VARIANT.get(arch, "")
    if variant in _BASE_VARIANT.get(arch, ()):
        variant = ""
    return replace(platform, architecture=arch, os=os_, variant=variant or None)


def _variant_rank(have: str | None, want: str | None, arch: str) -> int | None:
    """0 for the same variant, n for the nth older one `want` can run, None for neither."""
    if have == want:
        return 0
    ladder = _OLDER.get(arch)
    if ladder is None or (want or "v1") not in ladder:
        return None
    older = ladder[ladder.index(want or "v1") :]
    have_v = have or ("v1" if arch == "amd64" else None)
    return older.index(have_v) if have_v in older else None


def match_rank(have: Platform | None, want: Platform) -> int | None:
    """How well an image of `have` serves `want`: 0 best, None not at all."""
    if have is None:
        return None
    h, w = normalize(have), normalize(want)
    if (h.os, h.architecture) != (w.os, w.architecture):
        return None
    return _variant_rank(h.variant, w.variant, w.architecture)


def same_platform(a: Platform, b: Platform) -> bool:
    """The two name one platform once normalized (`linux/arm64` and `linux/arm64/v8`)."""
    return normalize(a) == normalize(b)
