"""Pull an image from a registry into the store.

Order of work: the manifest (or index, then the platform's manifest) first; then the config
and layers, several at a time, each streamed into a store ingest whose commit verifies the
digest and size (a blob already in the store is not downloaded again unless its size, or for
small blobs its digest, shows it damaged); then the manifests, stored as sent so their digests
hold, after what they name; then the tag. A local write error (a full disk) ends the pull as
a HostError, never retried as a network fault. Until the tag exists the new blobs are held by
a GC root, so a concurrent `gc` cannot take them.

The name is tagged in the familiar form (``busybox:latest`` for
``docker.io/library/busybox:latest``), pointing at the platform's manifest; the index it came
from is kept in the store too, so a later pull by the index digest finds it locally.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from layerbuild.digest import Digest
from layerbuild.errors import DigestMismatch, ImageFormatError, RegistryError
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import (
    DEFAULT_PLATFORM,
    Descriptor,
    Platform,
    choose_platform,
    platform_matches,
)
from layerbuild.image.manifest import Index, Manifest
from layerbuild.registry.client import RegistryClient
from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.progress import (
    CORRUPT,
    DONE,
    EXISTS,
    STARTED,
    ByteCounter,
    OnProgress,
)
from layerbuild.registry.progress import TransferEvent as Event
from layerbuild.registry.reference import Reference, parse_reference
from layerbuild.registry.sources import BlobSources
from layerbuild.store.layout import Store

# layers already stored up to this size are hashed on every pull (a config, a small layer: a
# fraction of a second); larger ones only with verify=True (`pull --verify`), else their size
VERIFY_LIMIT = 16 << 20


class KeepAlive(Protocol):
    """GcRoot.add: keep these digests alive until the pull is tagged."""

    def __call__(self, *digests: Digest) -> None: ...


def pull(
    store: Store,
    ref: str,
    *,
    platform: Platform | None = None,
    insecure: Iterable[str] = (),
    options: RegistryOptions | None = None,
    on_progress: OnProgress | None = None,
    verify: bool = False,
) -> Descriptor:
    """Pull `ref` (Docker Hub rules: busybox = docker.io/library/busybox:latest) into `store`.

    Returns the descriptor of the image manifest (the one for `platform`, default linux/amd64,
    when `ref` names an index) and tags it under the familiar name when `ref` has a tag.
    """
    reference = parse_reference(ref)
    opts = (options or RegistryOptions()).with_insecure(tuple(insecure))
    client = RegistryClient(reference.registry, opts)
    try:
        with store.gc_root() as root:
            desc = _pull(store, client, reference, platform, on_progress, root.add, verify)
            if reference.tag is not None:
                familiar = Reference(reference.registry, reference.repository, reference.tag)
                store.refs.set(familiar.familiar, desc)
            return desc
    finally:
        client.close()


def _pull(
    store: Store,
    client: RegistryClient,
    reference: Reference,
    platform: Platform | None,
    on_progress: OnProgress | None,
    keep: KeepAlive,
    verify: bool,
) -> Descriptor:
    repo = reference.repository
    top = client.get_manifest(repo, reference.digest or reference.tag or "latest")
    keep(top.digest)
    fetched, chosen = top, None
    if top.media_type in mt.INDEXES:
        chosen = select_manifest(Index.from_bytes(top.data), platform, reference)
        fetched = client.get_manifest(repo, chosen.digest)
        keep(fetched.digest)
    manifest = Manifest.from_bytes(fetched.data, fetched.media_type)
    _check_layers(manifest, reference)
    blobs = [manifest.config, *manifest.layers]
    keep(*(b.digest for b in blobs))
    fetch_blobs(store, client, repo, blobs, on_progress, verify=verify)
    # manifests last, each after what it names: a pull that fails part-way (a full disk, a
    # kill) leaves blobs nothing names, which gc collects, never a manifest fsck finds broken
    store.content.put_bytes(fetched.data, fetched.digest)
    if fetched is not top:
        store.content.put_bytes(top.data, top.digest)
    BlobSources(store.sources_dir).record([b.digest for b in blobs], client.registry, repo)
    config = ImageConfig.from_bytes(store.content.read_bytes(manifest.config.digest))
    have = Platform(architecture=config.architecture, os=config.os, variant=config.variant)
    if chosen is None and platform is not None and not platform_matches(have, platform):
        raise RegistryError(
            f"{reference.familiar} is a single-platform image for {have}, not {platform}",
            hint=f"pull it without --platform, or pass --platform {have}",
        )
    return Descriptor(fetched.media_type, fetched.digest, len(fetched.data), platform=have)


def select_manifest(index: Index, platform: Platform | None, reference: Reference) -> Descriptor:
    """The index entry for `platform` (default linux/amd64; an index of one image: that one)."""
    images = [m for m in index.manifests if m.media_type in mt.MANIFESTS]
    chosen, available = choose_platform(images, platform)
    if chosen is None:
        raise RegistryError(
            f"{reference.familiar} has no image for platform "
            f"{platform or DEFAULT_PLATFORM} (available: {available})",
            hint="pass --platform with one of the available platforms",
        )
    return chosen


def _check_layers(manifest: Manifest, reference: Reference) -> None:
    for layer in manifest.layers:
        if layer.media_type not in mt.LAYERS:
            raise ImageFormatError(
                f"{reference.familiar}: layer {layer.digest.short} has media type "
                f"{layer.media_type}, which layerbuild cannot unpack",
                hint="layers must be tar, tar+gzip or tar+zstd (OCI or Docker)",
            )
        if layer.urls:
            raise ImageFormatError(
                f"{reference.familiar}: layer {layer.digest.short} is a foreign layer "
                "(it lives at an external URL)",
                hint="foreign (non-distributable) layers are not supported",
            )


def fetch_blobs(
    store: Store,
    client: RegistryClient,
    repository: str,
    blobs: list[Descriptor],
    on_progress: OnProgress | None = None,
    *,
    verify: bool = False,
) -> None:
    """Download the blobs the store lacks, `client.options.parallel` at a time; a stored copy
    that is damaged counts as lacking (see `usable`)."""
    unique = list({b.digest: b for b in blobs}.values())
    missing = [b for b in unique if not usable(store, b, on_progress, verify=verify)]
    if not missing:
        return
    workers = max(1, min(client.options.parallel, len(missing)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pull") as pool:
        futures = [
            pool.submit(fetch_blob, store, client, repository, b, on_progress) for b in missing
        ]
        for future in futures:
            future.result()


def usable(
    store: Store, blob: Descriptor, on_progress: OnProgress | None, *, verify: bool
) -> bool:
    """True when the store holds `blob` intact: its size always, its digest too when `verify`
    or when that is cheap (up to VERIFY_LIMIT bytes). A damaged copy (issue 18: a disk that
    filled up under an older layerbuild) is dropped and reported, so that it is pulled again
    instead of being kept as "Already exists" and failing every build on it."""
    if not store.content.has(blob.digest):
        return False
    wrong = store.content.check(
        blob.digest, blob.size, verify=verify or blob.size <= VERIFY_LIMIT
    )
    if wrong is None:
        if on_progress is not None:
            on_progress(Event(EXISTS, blob.digest, blob.size))
        return True
    store.content.delete(blob.digest)
    if on_progress is not None:
        on_progress(Event(CORRUPT, blob.digest, blob.size, reason=wrong))
    return False


def fetch_blob(
    store: Store,
    client: RegistryClient,
    repository: str,
    desc: Descriptor,
    on_progress: OnProgress | None = None,
) -> None:
    """Stream one blob into the store; the ingest's commit checks its digest."""
    if on_progress is not None:
        on_progress(Event(STARTED, desc.digest, desc.size))
    with store.content.ingest() as ingest:
        counter = ByteCounter(desc.digest, desc.size, on_progress)
        client.fetch_blob(repository, desc, ingest, counter)
        try:
            ingest.commit(desc.digest, size=desc.size)
        except DigestMismatch as e:
            raise RegistryError(
                f"blob {desc.digest} from {client.registry}/{repository} does not match its "
                f"digest (got {e.actual})",
                hint="the registry holds corrupt data or a proxy altered it; nothing was stored",
            ) from e
    if on_progress is not None:
        on_progress(Event(DONE, desc.digest, desc.size, desc.size))
