"""A build for several platforms (`--platform linux/amd64,linux/arm64`): one executor run per
platform, each with its own plan, keys, layers and config, then an OCI image index of their
manifests, tagged as one image (as buildx's multi-platform images are).

Built above the executor, which builds one platform: a run is exactly the build a
`--platform P` alone would do, so its steps share the cache with single-platform builds
(the FROM step's key names the platform; building amd64, then amd64 and arm64, finds every amd64
step cached). Nothing is tagged until every platform is built.

Runs go at once, as the stages of one build do (engine/scheduler.py), within `--jobs`: with N
jobs and P platforms, min(N, P) runs at a time, each with N // min(N, P) jobs for its own
stages, so no more than N stages ever run (`split_jobs`; 3 jobs and 2 platforms: two runs of
one job each). `--jobs 1` builds the platforms one after another on the calling thread, in the
order asked for, and so does a build with `--cache-to`, each run with all N jobs (every run
exports its own records there, and two exports to one place must not overlap).

The first run to fail stops the others: each run has a Cancel of its own (sandbox/cancel.py),
all of them cancelled once that failure reached the scheduler, so their sandboxes are killed
and no later step starts; its error is the one raised, and nothing is tagged. The index lists
the platforms in the order asked for, whichever run finished first, so its digest does not
depend on `--jobs`. What the runs share in this process is what concurrent builds share
anyway: the store (complete files renamed into place; a snapshot committed twice keeps the
first), the stat and block caches (each run its own SQLite connection: WAL, a busy timeout)
and the step cache's records (the previous build's steps are kept per platform).

The runs' events reach the caller as one build's, one at a time: step ids come from one counter
in the order steps start (one after another, they continue from run to run), stages are named
with their platform (`linux/arm64 build`, as BuildKit's progress shows them), the build checks
are reported once, and a run's end becomes a log line; the last event is the index's BuildDone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
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
from layerbuild.errors import BuildError, HostError
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
class _Shared:
    """What the platform runs share: the caller's emit, one at a time, and the step ids."""

    emit: Callable[[BuildEvent], None]
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 1


@dataclass
class _Relay:
    """Passes one run's events on as part of the whole build's."""

    shared: _Shared
    platform: Platform
    first: bool
    ids: dict[int, int] = field(default_factory=dict)  # the run's step id -> the build's

    def __call__(self, event: BuildEvent) -> None:
        with self.shared.lock:  # runs of several platforms relay at once
            relayed = self._relayed(event)
            if relayed is not None:
                self.shared.emit(relayed)

    def _relayed(self, event: BuildEvent) -> BuildEvent | None:
        if isinstance(event, BuildDone):
            return Log(None, f"{self.platform}: image {event.digest}")
        if isinstance(event, CheckWarned) and not self.first:
            return None  # the same Dockerfile, the same warnings: the first run reported them
        if isinstance(event, StepStarted):
            stage = f"{self.platform} {event.stage}"
            return replace(event, step_id=self._id(event.step_id), stage=stage)
        if isinstance(event, StepDone | StepFailed):
            return replace(event, step_id=self._id(event.step_id))
        if isinstance(event, Log) and event.step_id is not None:
            return replace(event, step_id=self._id(event.step_id))
        return event

    def _id(self, step_id: int) -> int:
        """The build's id for the run's step `step_id`, the next one the first time it is
        seen (its StepStarted): runs one after another number as one build would."""
        if step_id not in self.ids:
            self.ids[step_id] = self.shared.next_id
            self.shared.next_id += 1
        return self.ids[step_id]


@dataclass(frozen=True)
class _Run:
    """One platform's build, as the scheduler runs it: independent of the others."""

    index: int
    platform: Platform
    deps: frozenset[int] = frozenset()


def split_jobs(jobs: int, platforms: int) -> tuple[int, int]:
    """(platforms built at once, --jobs of each): never more stages running than `jobs`."""
    at_once = max(1, min(jobs, platforms))
    return at_once, max(1, jobs // at_once)


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
    from layerbuild.engine.executor import Executor
    from layerbuild.sandbox.cancel import Cancel

    started = time.monotonic()
    tags = tuple(normalize_tag(t) for t in options.tags)
    notes = options.annotations
    per_platform = Annotations(
        manifest=notes.manifest, manifest_descriptor=notes.manifest_descriptor
    )
    # each run exports its records to the --cache-to places itself: never two at once, as a
    # local export removes the blobs its records do not name
    at_once, jobs = split_jobs(options.jobs, 1 if options.cache_to else len(platforms))
    shared = _Shared(emit)
    runs = [_Run(n, p) for n, p in enumerate(platforms)]
    cancels = [Cancel() for _ in runs]
    results: dict[int, BuildResult] = {}

    def build(run: _Run) -> None:
        relay = _Relay(shared, run.platform, first=run.index == 0)
        opts = replace(
            options, platform=run.platform, tags=(), annotations=per_platform, jobs=jobs
        )
        # the context walkers' listing serves the first run; the others list it themselves
        listing = prefetch if run.index == 0 else None
        executor = Executor(store, opts, relay, listing, cancels[run.index])
        try:
            results[run.index] = executor.build()
        except (BuildError, HostError) as e:
            if e.step is not None:  # which platform's step failed: the progress names it so
                e.step = f"{run.platform}: {e.step}"
            raise

    def stop() -> None:
        for cancel in cancels:
            cancel.cancel()

    # shared for the whole build: gc must not take a platform's untagged image meanwhile
    with store.lock(shared=True):
        if at_once == 1:
            for run in runs:  # one after another, on this thread
                build(run)
        else:
            from layerbuild.engine.scheduler import run_stages

            run_stages(runs, build, at_once, stop)
        # in the order asked for, whichever finished first; each entry names the platform
        # asked for, as BuildKit's exporter does (a base's config may spell it otherwise:
        # arm64/v8 for arm64)
        entries = [replace(results[r.index].descriptor, platform=r.platform) for r in runs]
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
