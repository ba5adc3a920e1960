"""The build cache as the executor sees it: look a step's key up, record it, explain a miss.

Keys chain: every step's key names its parent's key, so a change anywhere misses that step and
everything after it, while a sibling stage whose inputs did not change still hits. A hit is only
trusted when the layer blob it names is still in the store (gc may have removed it).

Miss reasons compare the step with the same step (stage, position) of the previous build of the
same Dockerfile and target, whose keys and per-file summaries the store keeps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from layerbuild.digest import Digest
from layerbuild.image.config import ImageConfig
from layerbuild.image.manifest import Layer
from layerbuild.plan.keys import CacheKey, Inputs, explain
from layerbuild.store.cacheindex import CacheIndex, CacheRecord
from layerbuild.store.layout import Store


@dataclass
class StepCache:
    store: Store
    identity: str  # what "the previous build" means: Dockerfile path + target
    disabled: bool = False  # --no-cache
    disabled_stages: frozenset[str] = frozenset()  # --no-cache-filter
    index: CacheIndex = field(init=False)
    previous: dict[tuple[str, int], dict[str, Any]] = field(init=False)
    steps: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.index = CacheIndex(self.store.root)
        self.previous = {
            (str(s.get("stage")), int(s.get("index", 0))): s
            for s in self.index.last_build(self.identity)
            if isinstance(s, dict)
        }

    def lookup(self, stage: str, key: CacheKey) -> CacheRecord | None:
        """The record of `key` when it may be reused, else None."""
        if self.disabled or stage in self.disabled_stages:
            return None
        record = self.index.get(key)
        if record is None:
            return None
        if record.layer is not None and not self.store.content.has(record.layer.digest):
            return None
        self.index.touch(key.digest)  # last used: what `cache prune` drops first is the oldest
        return record

    def record(
        self,
        key: CacheKey,
        layer: Layer | None,
        config: ImageConfig,
        files: dict[str, str] | None = None,
    ) -> None:
        text = dict(key.inputs).get("instruction", "")
        self.index.put(CacheRecord(key, layer, config, files=files or {}, description=text))

    def reason(
        self, stage: str, index: int, key: CacheKey, files: dict[str, str] | None = None
    ) -> str:
        """Why `key` missed, against the same step of the previous build."""
        if self.disabled or stage in self.disabled_stages:
            return "cache disabled (--no-cache)" if self.disabled else "cache disabled for stage"
        prev = self.previous.get((stage, index))
        if prev is None:
            return "no previous build of this step"
        old_inputs: Inputs = tuple(
            (str(k), str(v)) for k, v in prev.get("inputs") or () if isinstance(k, str)
        )
        if prev.get("key") == str(key.digest):
            return "not in the cache (pruned)"
        old_files: Mapping[str, str] = {}
        if files is not None:
            old = self.previous_record(stage, index)
            old_files = old.files if old is not None else {}
        return explain(old_inputs, key.inputs, files_old=old_files, files_new=files or {})

    def previous_record(self, stage: str, index: int) -> CacheRecord | None:
        """The cache record of the same step in the previous build, if still cached."""
        prev = self.previous.get((stage, index))
        if prev is None or not prev.get("key"):
            return None
        inputs: Inputs = tuple(
            (str(k), str(v)) for k, v in prev.get("inputs") or () if isinstance(k, str)
        )
        return self.index.get(CacheKey(Digest(str(prev["key"])), inputs))

    def previous_seconds(self, stage: str, index: int) -> float:
        prev = self.previous.get((stage, index))
        return float(prev.get("seconds", 0.0)) if prev else 0.0

    def note_step(self, stage: str, index: int, key: CacheKey, seconds: float, hit: bool) -> None:
        """Remember the step for the next build's miss reasons (and its time, for 'saved')."""
        prev_seconds = self.previous_seconds(stage, index) if hit else seconds
        self.steps.append(
            {
                "stage": stage,
                "index": index,
                "key": str(key.digest),
                "inputs": [list(i) for i in key.inputs],
                "seconds": prev_seconds,
            }
        )

    def finish(self) -> None:
        self.index.save_build(self.identity, self.steps)


def chain(parent: Digest | str, items: Iterable[tuple[str, str]]) -> CacheKey:
    """The key of a step: its parent's key first, then its own inputs."""
    return CacheKey.of((("parent", str(parent)), *items))
