"""The platform this builder runs on, and the check that a base image fits the target."""

from __future__ import annotations

import os

from layerbuild.errors import BuildError
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Platform


def host_platform() -> Platform:
    """The platform this builder runs on: BUILDPLATFORM, whatever the target is."""
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine
    )
    return Platform(architecture=arch, os="linux", variant="v7" if arch == "arm" else None)


def check_platform(config: ImageConfig, platform: Platform, ref: str) -> None:
    """A single-platform base must match the requested platform (no emulation here)."""
    have = (config.os, config.architecture)
    if all(have) and have != (platform.os, platform.architecture):
        raise BuildError(
            f"base image {ref} is {config.os}/{config.architecture}, not {platform}",
            hint=f"build with --platform {config.os}/{config.architecture}, or use a base "
            f"image for {platform}",
        )
