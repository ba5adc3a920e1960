"""A stage while it is built, as a value: each step's op returns the stage's next state (as
go-containerregistry's `mutate` returns a new image), and the executor threads it through the
stage's steps; `Executor.results` holds each stage's last one.

Its file tree is not part of it: that is a cache of the build (engine/stagetrees.py), loaded
when a step first needs it and checked against `layers`.

The variables (`scope`) are the one mutable part: ARG and ENV declare into the stage's VarScope
while they are prepared (before their key, which their expansion feeds), and making the
dockerfile package's scope a value is a change of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from layerbuild.digest import Digest
from layerbuild.dockerfile.scope import VarScope
from layerbuild.engine.meta import StageMeta
from layerbuild.image.config import ImageConfig
from layerbuild.image.manifest import Layer
from layerbuild.store.cacheindex import result_digest


@dataclass(frozen=True)
class StageState:
    """A stage after a step: its config so far, its layers, its variables and its last key."""

    name: str
    meta: StageMeta
    layers: tuple[Layer, ...]
    scope: VarScope
    key: Digest  # the cache key of the last step: every step's key chains its parent's
    triggers: tuple[str, ...] = ()  # the base image's ONBUILD instructions, run first

    def with_key(self, key: Digest) -> StageState:
        """The state once a step keyed `key` is done."""
        return replace(self, key=key)

    def with_meta(self, meta: StageMeta) -> StageState:
        return replace(self, meta=meta)

    def with_config(self, config: ImageConfig) -> StageState:
        return replace(self, meta=replace(self.meta, config=config))

    def with_layer(self, layer: Layer, meta: StageMeta) -> StageState:
        """`layer` on top, with the metadata that records it (diff_ids, history)."""
        return replace(self, layers=(*self.layers, layer), meta=meta)

    def source_ref(self) -> str:
        """What a step that reads this stage without hashing its files (a COPY --from's quick
        path, RUN --mount from=) keys on: its key and its result, since a stage whose output is
        not reproducible, rebuilt, has the same key and other files."""
        return f"stage:{self.key}@{result_digest(self.meta.config)}"
