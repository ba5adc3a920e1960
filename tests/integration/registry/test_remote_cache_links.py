"""Two builders of a Dockerfile with a non-reproducible step share one registry cache ref
(`--cache-to type=registry`): whatever a third store imports with `--cache-from`, its image is
one builder's image, whole, or its own, never a mix of records made on different /big.

The second export replaces the first under the ref (as BuildKit's registry cache does): the
ref then holds the second builder's records only. A store that imports both builders' records
(the first kept under another tag) takes the one chain that fits the result it has."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cache_links import NOT_REPRODUCIBLE, build
from tests.support.cli import Layerbuild, hash_blobs, make_context
from tests.support.registry import RegistryServer

pytestmark = [pytest.mark.registry, pytest.mark.root, pytest.mark.overlay]

# /big is random; every step after it depends on it, through its files or its config
DOCKERFILE = """\
FROM busybox
RUN head -c 1000 /dev/urandom > /big
RUN md5sum /big > /sum
ENV CHECKED=1
RUN cat /sum /big | md5sum > /both
"""
PREFIX = DOCKERFILE.split("RUN md5sum", 1)[0]


def _chain(steps: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What each step was taken as: its key, the result it was made on, its layer."""
    return [(s["key"], s.get("parent"), s.get("layer")) for s in steps]


def _files(ctx: Path) -> tuple[bytes, str, str]:
    """/big, /sum and /both of the image just built (its rootfs in `<ctx>/../out`)."""
    out = ctx.parent / "out"
    return (out / "big").read_bytes(), (out / "sum").read_text(), (out / "both").read_text()


def _consistent(files: tuple[bytes, str, str]) -> bool:
    big, total, both = files
    want_both = hashlib.md5(total.encode() + big).hexdigest()
    return total.split()[0] == hashlib.md5(big).hexdigest() and both.split()[0] == want_both


def test_two_builders_sharing_one_registry_ref_never_mix(
    registry: RegistryServer,
    lb: Layerbuild,
    new_store: Callable[[str], Layerbuild],
    tmp_path: Path,
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": DOCKERFILE})
    main, first = f"{registry.host}/cache:main", f"{registry.host}/cache:first"
    steps_a, _ = build(
        lb,
        ctx,
        "--cache-to",
        f"type=registry,ref={main},mode=max",
        "--cache-to",
        f"type=registry,ref={first},mode=max",
    )
    files_a, image_a = _files(ctx), lb.inspect("t:1")["Digest"]
    b = new_store("b")
    steps_b, _ = build(b, ctx, "--cache-to", f"type=registry,ref={main},mode=max")
    files_b, image_b = _files(ctx), b.inspect("t:1")["Digest"]
    assert files_a[0] != files_b[0] and image_a != image_b
    assert _consistent(files_a) and _consistent(files_b)

    # a fresh store gets what the ref holds now: builder B's chain, whole
    fresh = new_store("c")
    steps, output = build(fresh, ctx, "--cache-from", f"type=registry,ref={main}")
    assert "imported 4 cache records" in output
    assert [s["cache"] for s in steps] == ["hit"] * 5
    assert _chain(steps) == _chain(steps_b) and _files(ctx) == files_b
    assert fresh.inspect("t:1")["Digest"] == image_b
    assert hash_blobs(fresh.store) == []

    # one that imports both builders' records (in either order) builds one of their images
    for order in ((first, main), (main, first)):
        both = new_store(f"both-{order[0].rsplit(':', 1)[1]}")
        args = [a for ref in order for a in ("--cache-from", f"type=registry,ref={ref}")]
        steps, _ = build(both, ctx, *args)
        assert [s["cache"] for s in steps] == ["hit"] * 5
        assert _chain(steps) in (_chain(steps_a), _chain(steps_b))
        assert _files(ctx) in (files_a, files_b)
        assert both.inspect("t:1")["Digest"] in (image_a, image_b)


def test_a_store_with_its_own_random_result_builds_on_it(
    registry: RegistryServer,
    lb: Layerbuild,
    new_store: Callable[[str], Layerbuild],
    tmp_path: Path,
) -> None:
    """The store made its own /big before importing: the imported records after the random
    step were made on other /big files, so those steps run again on its own."""
    ctx = make_context(tmp_path, {"Dockerfile": DOCKERFILE})
    ref = f"{registry.host}/cache:main"
    steps_a, _ = build(lb, ctx, "--cache-to", f"type=registry,ref={ref},mode=max")
    files_a = _files(ctx)
    own = new_store("own")
    prefix = make_context(tmp_path, {"Dockerfile": PREFIX}, "prefix")
    build(own, prefix)
    own_big = (prefix.parent / "out" / "big").read_bytes()
    assert own_big != files_a[0]
    steps, output = build(own, ctx, "--cache-from", f"type=registry,ref={ref}")
    assert "imported 3 cache records" in output  # all but the random step's: this store has it
    assert [s["cache"] for s in steps] == ["hit", "hit", "miss", "miss", "miss"]
    assert steps[2]["reason"] == NOT_REPRODUCIBLE
    files = _files(ctx)
    assert files[0] == own_big and _consistent(files)
    theirs = {s["layer"] for s in steps_a[2:]} - {None}
    assert not {s["layer"] for s in steps[2:]} & theirs
    # and the next build hits its own records
    steps, _ = build(own, ctx, "--cache-from", f"type=registry,ref={ref}")
    assert [s["cache"] for s in steps] == ["hit"] * 5 and _files(ctx) == files
