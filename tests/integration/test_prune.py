"""What prune gives back: per-layer RUN snapshots and cache-mount directories no image and no
cache record needs, never those a tagged image still uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, make_context

pytestmark = [pytest.mark.root, pytest.mark.overlay]

DOCKERFILE = """\
FROM busybox
RUN --mount=type=cache,target=/var/cache/x echo data > /var/cache/x/f && echo made > /made
"""


def _snapshots(store: Path) -> set[str]:
    root = store / "snapshots" / "layers"
    return {p.name for p in root.iterdir() if not p.name.startswith("tmp-")}


def test_prune_keeps_what_tags_need_and_cache_prune_all_clears_the_rest(
    lb: Layerbuild, tmp_path: Path
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": DOCKERFILE})
    lb.build(ctx, "-t", "app:1")
    before = _snapshots(lb.store)
    assert len(before) == 2  # busybox's layer and the RUN's committed upper
    assert (lb.store / "cache" / "mounts").is_dir()

    lb.ok("prune")
    assert _snapshots(lb.store) == before  # the tag (and the cache) still need both

    lb.ok("rmi", "app:1")
    lb.ok("rmi", "busybox:latest")
    lb.ok("cache", "prune", "--all")
    assert _snapshots(lb.store) == set()
    assert not (lb.store / "cache" / "mounts").exists()
