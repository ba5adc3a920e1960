"""What a build is asked to do (BuildOptions) and what it gives back (BuildResult)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from layerbuild.digest import Digest
from layerbuild.image.annotations import Annotations
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Descriptor, Platform
from layerbuild.registry.options import RegistryOptions

if TYPE_CHECKING:  # annotations only: a build without them never imports these modules
    from layerbuild.registry.remotecache.spec import CacheSpec
    from layerbuild.sandbox.limits import Ulimit
    from layerbuild.sandbox.netfiles import HostEntry


@dataclass(frozen=True)
class BuildOptions:
    """Everything a build is asked to do, as the CLI parsed it."""

    context: Path
    dockerfile: Path | None = None  # default: <context>/Dockerfile
    tags: tuple[str, ...] = ()
    target: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    build_contexts: Mapping[str, str] = field(default_factory=dict)  # NAME -> spec
    platform: Platform = field(default_factory=Platform)
    compression: str = "gzip"
    source_date_epoch: int | None = None
    dockerfile_text: str | None = None  # `-f -`: the Dockerfile read from stdin
    no_cache: bool = False
    no_cache_filter: tuple[str, ...] = ()  # stage names (or indices) never looked up
    registry: RegistryOptions | None = field(default_factory=RegistryOptions)  # None: no pulls
    # RUN's network unless RUN --network says otherwise: default (own namespace with outbound
    # access) | none | host; see sandbox/netfiles.py
    network: str = "default"
    add_hosts: tuple[HostEntry, ...] = ()  # --add-host: extra /etc/hosts lines of every RUN
    # RUN --mount=type=secret sources: id -> file (never copied into a layer or a cache key)
    secrets: Mapping[str, Path] = field(default_factory=dict)
    # RUN --mount=type=ssh agents: id -> agent socket (engine/sshforward.py); never keyed
    ssh: Mapping[str, Path] = field(default_factory=dict)
    cache_to: tuple[CacheSpec, ...] = ()  # --cache-to: export this build's cache records
    cache_from: tuple[CacheSpec, ...] = ()  # --cache-from: import records before the build
    # --label: set on the final image's config after the Dockerfile's LABELs; in no step key
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Annotations = field(default_factory=Annotations)  # --annotation
    shm_size: int | None = None  # --shm-size in bytes; None: 64 MiB (in RUN keys when set)
    ulimits: tuple[Ulimit, ...] = ()  # --ulimit of every RUN (in RUN keys when set)
    # Speed-ups that change no result, each turned off only to show that (docs/cache.md,
    # "Speed-ups"); cli/build.py sets them from the environment. With all but block_reuse off
    # the build runs with engine/speedups/base.NullSpeedups, the reference behaviour.
    quick_keys: bool = True  # a COPY keyed from names + lstat (engine/filesteps.quick_key)
    speculative_packing: bool = True  # a cold COPY packed before its key (engine/layerwriter)
    snapshots_ahead: bool = True  # a COPY's snapshot written from Changes (speedups/copykeys)
    run_ahead: bool = True  # the RUN after a missed COPY run while it packs (speedups/runahead)
    block_reuse: bool = True  # gzip blocks of stored layers copied, not deflated again
    splice: bool = True  # a COPY layer's unchanged entries copied from its last build's layer
    # RUN's snapshotter: auto | overlay | fuse-overlayfs | copy (sandbox/runner.py); None: auto
    snapshotter: str | None = None
    statcache_stats: Path | None = None  # append the stat cache's counters here (benchmarks)
    blockcache_stats: Path | None = None  # and the gzip block cache's (store/blockcache.py)
    dry_run: bool = False  # key every step, run none, write nothing but the stat cache
    # --expect-cached: stop at the first step of these stages that would run ("*": any stage)
    expect_cached: frozenset[str] = frozenset()
    splice_stats: Path | None = None  # and the splice's (store/splicesource.py)
    # independent stages built at once (engine/scheduler.py); the CLI's default: the cores
    jobs: int = 1


@dataclass(frozen=True)
class BuildResult:
    """What a build made: the image's manifest, config and tags."""

    descriptor: Descriptor  # the image manifest
    config: ImageConfig
    tags: tuple[str, ...]
    seconds: float

    @property
    def digest(self) -> Digest:
        return self.descriptor.digest
