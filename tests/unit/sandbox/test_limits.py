"""--shm-size and --ulimit parsed as docker build parses them (go-units RAMInBytes and
ParseUlimit)."""

from __future__ import annotations

import resource

import pytest

from layerbuild.errors import LimitSpecError
from layerbuild.sandbox.limits import (
    Ulimit,
    parse_size,
    parse_ulimit,
    parse_ulimits,
)
from layerbuild.sandbox.mounts import default_mounts


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("134217728", 134217728),
        ("128m", 128 << 20),
        ("128M", 128 << 20),
        ("128mb", 128 << 20),
        ("128MiB", 128 << 20),
        ("1g", 1 << 30),
        ("512k", 512 << 10),
        ("1.5g", 3 << 29),
        ("64 m", 64 << 20),
    ],
)
def test_sizes_use_binary_multiples(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "12x", "-1m", "m", "1.2.3m", "1 g b"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(LimitSpecError, match="invalid size"):
        parse_size(text)


def test_ulimit_soft_and_hard() -> None:
    assert parse_ulimit("nofile=1024:2048") == Ulimit("nofile", 1024, 2048)
    assert parse_ulimit("nproc=512") == Ulimit("nproc", 512, 512)  # hard defaults to soft
    assert parse_ulimit("core=-1") == Ulimit("core", -1, -1)
    assert parse_ulimit("stack=8192:-1") == Ulimit("stack", 8192, -1)
    assert parse_ulimit("nofile=1:2").resource == resource.RLIMIT_NOFILE


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("nofile", "expected TYPE=SOFT"),
        ("as=1", "invalid ulimit type 'as'"),  # docker leaves it out on purpose
        ("bogus=1", "invalid ulimit type"),
        ("nofile=abc", "not a whole number"),
        ("nofile=1:2:3", "too many values"),
        ("nofile=2048:1024", "2048 > 1024"),
        ("nofile=-2", "negative"),
        ("nofile=-1:10", "unlimited soft limit"),
    ],
)
def test_bad_ulimits_are_refused(text: str, why: str) -> None:
    with pytest.raises(LimitSpecError, match=why):
        parse_ulimit(text)


def test_a_later_ulimit_of_the_same_type_wins() -> None:
    limits = parse_ulimits(["nofile=10", "nproc=20", "nofile=30:40"])
    assert limits == (Ulimit("nofile", 30, 40), Ulimit("nproc", 20, 20))


def test_shm_mount_takes_the_size() -> None:
    def shm(size: int | None) -> tuple[str, ...]:
        mounts = default_mounts(rootless=False, own_netns=True, shm_size=size)
        return next(m.options for m in mounts if m.target == "/dev/shm")

    assert "size=65536k" in shm(None)
    assert f"size={128 << 20}" in shm(128 << 20)
