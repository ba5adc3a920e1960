"""A build for several platforms (`--platform linux/amd64,linux/arm64`): one executor run per
platform, each with its own plan, keys, layers and config, then an OCI image index of their
manifests, tagged as one image (as buildx's multi-platform images are).

Built above the executor, which builds one platform: a run is exactly the build a
`--platform P` alone would do, so its steps share the cache with single-platform builds
(the FROM step's key names the platform; building amd64, then amd64 and arm64, finds every amd64
step cached). Runs go one after another; nothing is tagged until every platform is built.

The runs' events reach the caller as one build's: step ids continue from run to run, stages are
named with their platform (`linux/arm64 build`, as BuildKit's progress shows them), the build
checks are reported once, and a run's end becomes a log line; the last event is the index's
BuildDone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from layerbuild.engine.events import (
    BuildDone,
    BuildEvent,
    CheckWarned,
    Log,
    StepDone,
    StepFailed,
    StepStarted,
)
from layerbuild.engine.options import BuildOptions, BuildResult
from layerbuild.image import mediatypes as mt
from layerbuild.image.annotations import Annotations
from layerbuild.image.descriptor import Descriptor, Platform
from layerbuild.image.manifest import Index
from layerbuild.registry.reference import normalize_tag
from layerbuild.store import images

if TYPE_CHECKING:
    from layerbuild.context.prefetch import ListingPrefetch
    from layerbuild.store.layout import Store


@dataclass
class _Relay:
    """Passes one run's events on as part of the whole build's."""

    emit: Callable[[BuildEvent], None]
    platform: Platform
    offset: int  # step ids of the runs before this one
    first: bool
    last_id: int = 0

    def __call__(self, event: BuildEvent) -> None:
        if isinstance(event, BuildDone):
            self.emit(Log(None, f"{self.platform}: image {event.digest}"))
            return
        if isinstance(event, CheckWarned) and not self.first:
            return  # the same Dockerfile, the same warnings: the first run reported them
        if isinstance(event, StepStarted):
            self.last_id = max(self.last_id, event.step_id)
            event = replace(
                event, step_id=event.step_id + self.offset, stage=f"{self.platform} {event.stage}"
            )
        elif isinstance(event, StepDone | StepFailed):
            event = replace(event, step_id=event.step_id + self.offset)
        elif isinstance(event, Log) and event.step_id is not None:
            event = replace(event, step_id=event.step_id + self.offset)
        self.emit(event)


def build_platforms(
    store: Store,
    options: BuildOptions,
    emit: Callable[[BuildEvent], None] = lambda e: None,
    prefetch: ListingPrefetch | None = None,
    *,
    platforms: Sequence[Platform],
) -> BuildResult:
    """Build `options` once per platform and tag an index of the images; returns the index
    (its config: the first platform's). `options.platform` is ignored."""
    from layerbuild.engine.executor import build

    started = time.monotonic()
    tags = tuple(normalize_tag(t) for t in options.tags)
    notes = options.annotations
    per_platform = Annotations(
        manifest=notes.manifest, manifest_descriptor=notes.manifest_descriptor
    )
    results: list[BuildResult] = []
    offset = 0
    # shared for the whole build: gc must not take a platform's untagged image meanwhile
    with store.lock(shared=True):
        for n, platform in enumerate(platforms):
            relay = _Relay(emit, platform, offset, first=n == 0)
            run = replace(options, platform=platform, tags=(), annotations=per_platform)
            # the context walkers' listing serves the first run; the others list it themselves
            results.append(build(store, run, relay, prefetch if n == 0 else None))
            offset += relay.last_id
        # each entry names the platform asked for, as BuildKit's exporter does (a base's
        # config may spell it otherwise: arm64/v8 for arm64)
        entries = [
            replace(r.descriptor, platform=p) for r, p in zip(results, platforms, strict=True)
        ]
        desc = write_index(store, entries, notes)
        for tag in tags:
            images.tag(store, tag, desc)
    seconds = time.monotonic() - started
    emit(BuildDone(desc.digest, tags, seconds))
    return BuildResult(desc, results[0].config, tags, seconds)


def write_index(
    store: Store, manifests: Sequence[Descriptor], annotations: Annotations
) -> Descriptor:
    """An OCI image index of one manifest per platform (each descriptor with its `platform`)
    in the store; its descriptor carries the index-descriptor annotations."""
    data = Index(tuple(manifests), annotations=annotations.index).to_bytes()
    digest = store.content.put_bytes(data)
    return Descriptor(mt.OCI_INDEX, digest, len(data), annotations.index_descriptor)
