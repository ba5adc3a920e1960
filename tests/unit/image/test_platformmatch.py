"""Platform matching as containerd's matcher does it (image/platformmatch.py)."""

from __future__ import annotations

import pytest

from layerbuild.digest import Digest
from layerbuild.image.descriptor import Descriptor, Platform, choose_platform
from layerbuild.image.platformmatch import match_rank, normalize, same_platform


def p(text: str) -> Platform:
    return Platform.parse(text)


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/arm64/8", "linux/arm64"),
        ("linux/arm64/v9", "linux/arm64/v9"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/amd64/v1", "linux/amd64"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        ("Linux/AMD64", "linux/amd64"),
    ],
)
def test_normalize(given: str, normal: str) -> None:
    assert str(normalize(p(given))) == normal


def test_arm64_without_variant_is_v8_both_ways() -> None:
    assert match_rank(p("linux/arm64/v8"), p("linux/arm64")) == 0
    assert match_rank(p("linux/arm64"), p("linux/arm64/v8")) == 0
    assert same_platform(p("linux/arm64"), p("linux/arm64/v8"))


def test_older_variants_rank_after_the_exact_one() -> None:
    assert match_rank(p("linux/arm/v7"), p("linux/arm/v7")) == 0
    assert match_rank(p("linux/arm/v6"), p("linux/arm/v7")) == 1
    assert match_rank(p("linux/arm/v7"), p("linux/arm/v6")) is None  # newer: not runnable
    assert match_rank(p("linux/amd64"), p("linux/amd64/v3")) == 2


def test_other_architecture_or_os_never_matches() -> None:
    assert match_rank(p("linux/amd64"), p("linux/arm64")) is None
    assert match_rank(p("linux/arm/v7"), p("linux/arm64")) is None  # no 32-bit fallback
    assert match_rank(p("windows/amd64"), p("linux/amd64")) is None
    assert match_rank(None, p("linux/amd64")) is None


def _entry(n: int, platform: str) -> Descriptor:
    return Descriptor("m", Digest("sha256:" + f"{n:x}" * 64), 1, platform=p(platform))


def test_choose_platform_takes_the_best_match() -> None:
    entries = [_entry(1, "linux/arm/v6"), _entry(2, "linux/arm/v7"), _entry(3, "linux/amd64")]
    chosen, _ = choose_platform(entries, p("linux/arm"))
    assert chosen == entries[1]
    chosen, available = choose_platform(entries, p("linux/s390x"))
    assert chosen is None
    assert available == "linux/arm/v6, linux/arm/v7, linux/amd64"
