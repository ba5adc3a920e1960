"""The platform this builder runs on, and the check that a base image fits the target."""

from __future__ import annotations

import os

from layerbuild.errors import BuildError
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Platform
from layerbuild.image.platformmatch import match_rank


def host_platform() -> Platform:
    """The platform this builder runs on: BUILDPLATFORM, whatever the target is."""
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine
    )
    return Platform(architecture=arch, os="linux", variant="v7" if arch == "arm" else None)


def check_platform(config: ImageConfig, platform: Platform, ref: str) -> None:
    """A single-platform base must serve the requested platform (containerd's matcher rules:
    image/platformmatch); its config names the platform it was built for."""
    if not (config.os and config.architecture):
        return  # an image that does not say: taken as it is, as BuildKit does
    have = Platform(architecture=config.architecture, os=config.os, variant=config.variant)
    if match_rank(have, platform) is None:
        raise BuildError(
            f"base image {ref} is {have}, not {platform}",
            hint=f"build with --platform {have}, or use a base image for {platform} "
            "(a multi-platform image index has one)",
        )


def stage_platform(flag: str | None, default: Platform) -> Platform:
    """A stage's platform: its FROM --platform (expanded) wins over the build's (as in
    BuildKit)."""
    if not flag:
        return default
    try:
        return Platform.parse(flag)
    except ValueError as e:
        raise BuildError(f"FROM --platform: {e}") from None
