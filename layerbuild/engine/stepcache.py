"""The build cache as the executor sees it: look a step's key up, record it, explain a miss.

Keys chain: every step's key names its parent's key, so a change anywhere misses that step and
everything after it, while a sibling stage whose inputs did not change still hits. A key alone
is not enough for a hit: the record must have been made on the very result (layers and config)
this build has below the step, since a step whose output is not reproducible gives another
result under the same key when it runs again (--no-cache, a killed build, another builder's
cache). A hit is only trusted when the layer blob it names is still in the store (gc may have
removed it). A record that is damaged or does not fit its parent is dropped with a warning and
the step runs again: the cache never fails a build.

Miss reasons compare the step with the same step (stage, position) of the previous build of the
same Dockerfile and target, whose keys and per-file summaries the store keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from layerbuild.digest import Digest
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Platform
from layerbuild.image.manifest import Layer
from layerbuild.plan.keys import KEY_FORMAT, CacheKey, Inputs, explain
from layerbuild.store.cacheindex import (
    CacheIndex,
    CacheRecord,
    DamagedRecord,
    link_problem,
    result_digest,
)
from layerbuild.store.layout import Store


def build_identity(
    dockerfile: Path | None, context: Path, target: str | None, platform: Platform
) -> str:
    """What "the previous build" means: the Dockerfile's path and the target, and the platform
    unless it is the default one (each platform of a multi-platform build has its own)."""
    identity = f"{(dockerfile or context / 'Dockerfile').absolute()}|{target}"
    return identity if platform == Platform() else f"{identity}|{platform}"


NOT_REPRODUCIBLE = (
    "the step before was rebuilt with a different result (its output is not reproducible)"
)


@dataclass
class StepCache:
    """Looks steps up in the cache and says why a step missed."""

    store: Store
    identity: str  # what "the previous build" means: Dockerfile path + target
    disabled: bool = False  # --no-cache
    disabled_stages: frozenset[str] = frozenset()  # --no-cache-filter
    index: CacheIndex = field(init=False)
    previous: dict[tuple[str, int], BuiltStep] = field(init=False)
    built: list[BuiltStep] = field(default_factory=list)  # this build's steps so far
    warn: Callable[[str], None] = lambda message: None
    # key -> the parent result it was last looked up on: what `record` links the record to
    parents: dict[Digest, Digest] = field(default_factory=dict)
    dropped: dict[Digest, str] = field(default_factory=dict)  # key -> why its record was dropped
    read_only: bool = False  # a dry run: no record is touched or removed

    def __post_init__(self) -> None:
        self.index = CacheIndex(self.store.root)
        steps = [BuiltStep.from_json(s) for s in self.index.last_build(self.identity)]
        self.previous = {(s.stage, s.index): s for s in steps if s is not None}

    @property
    def steps(self) -> list[dict[str, Any]]:
        """This build's steps in their saved form (what `cache compare`-style readers and the
        remote cache's record selection read)."""
        return [s.to_json() for s in self.built]

    def lookup(self, stage: str, key: CacheKey, parent: ImageConfig) -> CacheRecord | None:
        """The record of `key` made on the result whose config is `parent` (the stage's before
        the step), when it may be reused, else None. Compares digests: no layer is read."""
        self.parents[key.digest] = result_digest(parent)
        if self.disabled or stage in self.disabled_stages:
            return None
        return self.peek(key, parent)

    def peek(self, key: CacheKey, parent: ImageConfig) -> CacheRecord | None:
        """`lookup`, --no-cache or not: a dry run follows a disabled stage's records to key
        what comes after it."""
        self.parents[key.digest] = result_digest(parent)
        try:
            record = self.index.fetch(key.digest, self.parents[key.digest])
        except DamagedRecord as e:
            self._drop(key.digest, e.path, e.why)
            return None
        if record is None:
            return None
        path = self.index.path(key.digest, self.parents[key.digest])
        problem = link_problem(record, parent)
        if problem:
            self._drop(key.digest, path, problem)
            return None
        if record.layer is not None and not self.store.content.has(record.layer.digest):
            return None
        if not self.read_only:
            self.index.touch(path)  # last used: what `cache prune` drops first is the oldest
        return record

    def _drop(self, key: Digest, path: Path, why: str) -> None:
        self.dropped[key] = why
        if self.read_only:
            self.warn(f"the cache record {path} is damaged ({why}); a build drops it")
            return
        self.warn(f"dropped the cache record {path} ({why}); the step runs again")
        self.index.remove(path)

    def known(self, key: CacheKey) -> bool:
        """Whether any record of `key` is kept, on whatever parent (run-ahead stays away)."""
        return not self.disabled and bool(self.index.with_key(key.digest))

    def record(
        self,
        key: CacheKey,
        layer: Layer | None,
        config: ImageConfig,
        files: dict[str, str] | None = None,
    ) -> None:
        """Record `key`, linked to the parent result it was looked up on, once its layer is
        in the store (a record never names a blob it cannot give)."""
        parent = self.parents.get(key.digest)
        if parent is None or (layer is not None and not self.store.content.has(layer.digest)):
            return
        text = dict(key.inputs).get("instruction", "")
        record = CacheRecord(key, layer, config, files=files or {}, description=text)
        self.index.put(replace(record, parent=parent))

    def reason(
        self, stage: str, index: int, key: CacheKey, files: dict[str, str] | None = None
    ) -> str:
        """Why `key` missed, against the same step of the previous build."""
        if self.disabled or stage in self.disabled_stages:
            return self.disabled_reason(stage)
        if key.digest in self.dropped:
            return f"its cache record was dropped: {self.dropped[key.digest]}"
        parent = self.parents.get(key.digest)
        if any(r.parent != parent for r in self.index.with_key(key.digest)):
            return NOT_REPRODUCIBLE  # recorded, but on another result of the step before
        prev = self.previous.get((stage, index))
        if prev is None:
            return "no previous build of this step"
        if prev.key == str(key.digest):
            moved = prev.parent not in (None, str(parent))
            return NOT_REPRODUCIBLE if moved else "not in the cache (pruned)"
        old_files: Mapping[str, str] = {}
        if files is not None:
            old = self.previous_record(stage, index)
            old_files = old.files if old is not None else {}
        return explain(prev.inputs, key.inputs, files_old=old_files, files_new=files or {})

    def disabled_reason(self, stage: str) -> str:
        """Why every step of `stage` misses, or "" when its cache is not disabled."""
        if self.disabled:
            return "cache disabled (--no-cache)"
        return "cache disabled for stage" if stage in self.disabled_stages else ""

    def previous_record(self, stage: str, index: int) -> CacheRecord | None:
        """The cache record of the same step in the previous build, if still cached."""
        prev = self.previous.get((stage, index))
        if prev is None or not prev.key or not prev.parent:
            return None
        return self.index.get_digest(Digest(prev.key), Digest(prev.parent))

    def previous_seconds(self, stage: str, index: int) -> float:
        prev = self.previous.get((stage, index))
        return prev.seconds if prev else 0.0

    def note_step(self, stage: str, index: int, key: CacheKey, seconds: float, hit: bool) -> None:
        """Remember the step for the next build's miss reasons (and its time, for 'saved')."""
        prev_seconds = self.previous_seconds(stage, index) if hit else seconds
        # not a FROM: the result its record is linked to
        parent = str(self.parents[key.digest]) if key.digest in self.parents else None
        self.built.append(
            BuiltStep(stage, index, str(key.digest), key.inputs, prev_seconds, parent)
        )

    def finish(self) -> None:
        self.index.save_build(self.identity, self.steps)


@dataclass(frozen=True)
class BuiltStep:
    """A step of a build as the next build of the same Dockerfile reads it back: its key and
    named inputs (for miss reasons), the result its record is linked to, and its time."""

    stage: str
    index: int
    key: str
    inputs: Inputs
    seconds: float
    parent: str | None = None  # None: a FROM, which has no record

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "stage": self.stage,
            "index": self.index,
            "key": self.key,
            "inputs": [list(i) for i in self.inputs],
            "seconds": self.seconds,
        }
        if self.parent is not None:
            obj["parent"] = self.parent
        return obj

    @classmethod
    def from_json(cls, obj: object) -> BuiltStep | None:
        """The step saved as `obj`, None when it is not one (a damaged file is no reason to
        fail a build: its steps then miss with a plain reason)."""
        if not isinstance(obj, dict):
            return None
        inputs = obj.get("inputs") or ()
        seconds = obj.get("seconds", 0.0)
        parent = obj.get("parent")
        return cls(
            stage=str(obj.get("stage")),
            index=int(obj.get("index", 0)),
            key=str(obj.get("key") or ""),
            inputs=tuple(
                (str(i[0]), str(i[1]))
                for i in (inputs if isinstance(inputs, list) else ())
                if isinstance(i, list) and len(i) == 2 and isinstance(i[0], str)
            ),
            seconds=float(seconds) if isinstance(seconds, int | float) else 0.0,
            parent=str(parent) if parent is not None else None,
        )


def chain(parent: Digest | str, items: Iterable[tuple[str, str]]) -> CacheKey:
    """The key of a step: its parent's key first, the key format, then its own inputs."""
    return CacheKey.of((("parent", str(parent)), ("format", KEY_FORMAT), *items))
