"""Fetch again a stored blob that did not verify, from a registry repository it was seen in.

A read that finds a blob whose bytes do not hash to its name removes it from the store
(store/content.py). When ``sources/<hex>`` (sources.py) knows where the blob came from, the
commands that read images (`run`, `save`, `push`) fetch it from there and go on, saying so,
instead of failing until the user pulls the image again. The fetched blob goes through an
ordinary ingest, so its digest and size are verified before it is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from layerbuild.digest import Digest, is_digest
from layerbuild.errors import DigestMismatch, HostError, RegistryError, StoreError
from layerbuild.image.descriptor import Descriptor
from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.sources import BlobSources
from layerbuild.store.images import read_manifest
from layerbuild.store.layout import Store

T = TypeVar("T")


def image_blobs(store: Store, desc: Descriptor) -> list[Descriptor]:
    """The blobs of the image `desc` names, as far as they can be listed: its manifest (or
    index and manifest), config and layers; only the top one when the manifest is unreadable."""
    try:
        manifest_desc, manifest = read_manifest(store, desc)
    except StoreError:  # the manifest itself did not verify, or is gone
        return [desc]
    return [desc, manifest_desc, manifest.config, *manifest.layers]


def refetch(store: Store, desc: Descriptor, options: RegistryOptions | None = None) -> str | None:
    """Download `desc` into the store from the most recent known source that serves it;
    returns that source ("registry/repository"), or None when none could."""
    # http.client and ssl: only once a blob must be fetched, not for every run or save
    from layerbuild.registry.client import RegistryClient
    from layerbuild.registry.pull import fetch_blob

    for source in BlobSources(store.sources_dir).sources(desc.digest):
        registry, _, repository = source.partition("/")
        if not repository:
            continue
        client = RegistryClient(registry, options or RegistryOptions())
        try:
            fetch_blob(store, client, repository, desc)
        except RegistryError:
            continue  # gone from there, or unreachable: try an older source
        finally:
            client.close()
        return source
    return None


def with_refetch(
    store: Store,
    blobs: Callable[[], Iterable[Descriptor]],
    action: Callable[[], T],
    note: Callable[[str], None],
) -> T:
    """`action()`; when it meets a stored blob of `blobs()` that does not verify (and was
    dropped), fetch that blob again from its source, `note` it, and run `action` again. Each
    blob is fetched at most once; without a source the error stands."""
    fetched: set[Digest] = set()
    while True:
        try:
            return action()
        except DigestMismatch as e:
            desc = _dropped(store, blobs, e, fetched)
            if desc is None:
                raise
            try:
                source = refetch(store, desc)
            except HostError:
                raise e from None  # the store cannot take it (full, read-only): the first error
            if source is None:
                raise
            fetched.add(desc.digest)
            note(
                f"stored blob {desc.digest} was corrupt and has been removed; "
                f"fetched it again from {source}"
            )


def _dropped(
    store: Store,
    blobs: Callable[[], Iterable[Descriptor]],
    error: DigestMismatch,
    fetched: set[Digest],
) -> Descriptor | None:
    """The descriptor of the stored blob `error` is about, when it was dropped and is one of
    `blobs()` not fetched again yet."""
    if not store.writable or not is_digest(error.expected):
        return None
    expected = Digest(error.expected)
    if expected in fetched or store.content.has(expected):
        return None  # not a stored blob that was dropped (a layer's diff_id, say)
    return next((d for d in blobs() if d.digest == expected), None)
