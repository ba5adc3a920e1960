"""Mounts as data: overlay options, fstab options, the default container mounts."""

from __future__ import annotations

import pytest

from layerbuild.errors import SandboxError
from layerbuild.sandbox import linux
from layerbuild.sandbox.mounts import (
    MOUNT_DATA_LIMIT,
    OVERLAY_MAX_LOWERS,
    Mount,
    default_mounts,
    kernel_overlay_features,
    overlay_options,
    parse_options,
)


def test_overlay_options_keep_the_lowerdir_order_and_turn_features_off() -> None:
    data = overlay_options(["top", "mid", "base"], "/s/upper", "/s/work", rootless=False)
    assert data == (
        "lowerdir=top:mid:base,upperdir=/s/upper,workdir=/s/work,"
        "index=off,redirect_dir=off,metacopy=off"
    )


def test_rootless_overlay_uses_userxattr_and_only_known_features() -> None:
    data = overlay_options(["0"], "u", "w", rootless=True, features=["redirect_dir"])
    assert data == "lowerdir=0,upperdir=u,workdir=w,redirect_dir=nofollow,userxattr"


def test_overlay_options_refuse_what_the_kernel_would() -> None:
    with pytest.raises(SandboxError, match="one page"):
        overlay_options(["x" * 200] * 30, "u", "w", rootless=False)
    with pytest.raises(SandboxError, match="limit of 500"):
        overlay_options([str(i) for i in range(OVERLAY_MAX_LOWERS + 1)], "u", "w", rootless=False)
    with pytest.raises(SandboxError, match="':' or ','"):
        overlay_options(["a:b"], "u", "w", rootless=False)
    with pytest.raises(ValueError):
        overlay_options([], "u", "w", rootless=False)


def test_short_lower_names_fit_the_overlay_maximum() -> None:
    names = [str(i) for i in range(OVERLAY_MAX_LOWERS)]
    data = overlay_options(names, "/" + "u" * 200, "/" + "w" * 200, rootless=True)
    assert len(data) <= MOUNT_DATA_LIMIT


def test_kernel_features_come_from_the_module_parameters(tmp_path: object) -> None:
    assert kernel_overlay_features("/nonexistent") == {"index", "redirect_dir", "metacopy"}
    assert kernel_overlay_features() <= {"index", "redirect_dir", "metacopy"}


def test_parse_options_splits_flags_from_data() -> None:
    flags, data = parse_options(["rbind", "ro", "rw", "mode=755", "size=1k", "nosuid"])
    assert flags == linux.MS_BIND | linux.MS_REC | linux.MS_RDONLY | linux.MS_NOSUID
    assert data == "mode=755,size=1k"


def test_default_mounts_follow_the_namespaces() -> None:
    rootful = default_mounts(rootless=False, own_netns=True)
    targets = [m.target for m in rootful]
    assert targets[:2] == ["/proc", "/dev"]  # /dev first, so its nodes land in the tmpfs
    assert {"/dev/null", "/dev/urandom", "/dev/tty", "/dev/pts", "/dev/shm"} <= set(targets)
    assert Mount("sysfs", "sysfs", "/sys", ("ro", "nosuid", "nodev", "noexec")) in rootful
    pts = next(m for m in rootful if m.type == "devpts")
    assert "gid=5" in pts.options and "newinstance" in pts.options
    rootless = default_mounts(rootless=True, own_netns=False)
    assert not any("gid=5" in m.options for m in rootless)
    sys_mount = next(m for m in rootless if m.target == "/sys")
    assert sys_mount.is_bind and sys_mount.readonly
