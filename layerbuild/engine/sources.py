"""Where FROM and COPY --from find things: the store, named build contexts, stage results.

Named build contexts use docker buildx's syntax (`--build-context NAME=VALUE`):
- `oci-layout://PATH[:TAG]` or `oci-layout://PATH@sha256:...`: an image in an OCI layout
  directory, imported into the store (untagged) when first used;
- `docker-image://REF`: an image in the local store under another name;
- any other value: a local directory, usable as a COPY --from source (not as a FROM base).

An image that is not in the store is pulled from its registry (Docker Hub naming rules), as
`docker build` does, unless pulling was turned off.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from layerbuild.errors import BuildError, ContextError, ImageNotFound, RegistryError
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Descriptor, Platform
from layerbuild.image.manifest import Layer
from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.reference import normalize_tag
from layerbuild.store import images
from layerbuild.store.layout import Store

_LAYOUT = "oci-layout://"
_IMAGE = "docker-image://"
_TAG_RE = re.compile(r"^(?P<path>.+?)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?$")


class Unavailable(Exception):
    """A dry run needs what only a build gets or writes: a pull, an import, a snapshot."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SourceResolver:
    def __init__(
        self,
        store: Store,
        context: Path,
        named: Mapping[str, str],
        platform: Platform,
        registry: RegistryOptions | None = None,  # None: never pull a missing image
        *,
        read_only: bool = False,  # a dry run: raise Unavailable instead of writing the store
    ) -> None:
        self.read_only = read_only
        self.registry = registry
        self.store = store
        self.context = context
        self.named = {k.lower(): v for k, v in named.items()}
        self.platform = platform
        # stages run at once (engine/scheduler.py): two FROM the same missing image pull it once
        self._resolving = threading.Lock()

    def image(
        self, ref: str, *, named_context: bool = False, platform: Platform | None = None
    ) -> Descriptor:
        """The manifest (or index) descriptor for a FROM / COPY --from image reference; a
        pull fetches `platform` (FROM --platform), else the build's."""
        with self._resolving:
            return self._image(ref, named_context, platform)

    def _image(self, ref: str, named_context: bool, platform: Platform | None) -> Descriptor:
        if named_context:
            return self._named_image(ref)
        try:
            return images.resolve(self.store, ref if "@" in ref else normalize_tag(ref))
        except ImageNotFound:
            if self.read_only:
                raise Unavailable(
                    f"image {ref} is not in the store: a build would pull it"
                ) from None
            if self.registry is None:
                raise ImageNotFound(
                    f"image {ref!r} is not in the local store (and pulling is off)",
                    hint=f"load it first (`layerbuild load IMAGE.tar -t {ref}`), or name an "
                    f"OCI layout: --build-context {ref}=oci-layout:///path/to/layout:TAG",
                ) from None
        try:
            from layerbuild.registry.pull import pull  # http.client and ssl: only to pull

            return pull(self.store, ref, platform=platform or self.platform, options=self.registry)
        except RegistryError as e:
            raise ImageNotFound(
                f"image {ref!r} is not in the local store and could not be pulled: {e.message}",
                hint=f"load it first (`layerbuild load IMAGE.tar -t {ref}`), name an OCI "
                f"layout (--build-context {ref}=oci-layout:///path/to/layout:TAG), or fix "
                "the registry access",
            ) from e

    def _named_image(self, name: str) -> Descriptor:
        spec = self.named[name.lower()]
        if spec.startswith(_IMAGE):
            return self._image(spec[len(_IMAGE) :], False, None)  # under image()'s lock
        if spec.startswith(_LAYOUT):
            return self._layout_image(spec[len(_LAYOUT) :], name)
        raise ContextError(
            f"build context {name!r} is a directory ({spec}); FROM needs an image",
            hint=f"use --build-context {name}=oci-layout://PATH:TAG or docker-image://REF",
        )

    def _layout_image(self, spec: str, name: str) -> Descriptor:
        digest = None
        if "@" in spec:
            spec, digest = spec.rsplit("@", 1)
        m = _TAG_RE.match(spec)
        path, tag = (m.group("path"), m.group("tag")) if m else (spec, None)
        if not Path(path).is_dir() and Path(spec).is_dir():
            path, tag = spec, None  # a colon that is part of the directory name
        if self.read_only:
            raise Unavailable(f"build context {name} is an OCI layout: a build would import it")
        from layerbuild.export.load import import_image  # tar and codecs: only when used

        return import_image(self.store, Path(path), tag=tag, digest=digest, label=name)

    def directory(self, name: str) -> Path | None:
        """The directory of a named context that is a local directory, else None."""
        spec = self.named.get(name.lower())
        if spec is None or spec.startswith((_LAYOUT, _IMAGE)):
            return None
        path = Path(spec)
        if not path.is_absolute():
            path = Path.cwd() / path
        if not path.is_dir():
            raise ContextError(f"build context {name!r}: {spec} is not a directory")
        return path

    def stage_rootfs(self, layers: Sequence[Layer]) -> Path:
        """A directory holding the merged filesystem of a stage (a cached store snapshot)."""
        return self._rootfs([x.descriptor for x in layers], "that stage")

    def rootfs_of(self, ref: str, *, named_context: bool = False) -> Path:
        """The filesystem of an image (or a named directory context) for COPY --from."""
        if named_context and (directory := self.directory(ref)) is not None:
            return directory
        desc = self.image(ref, named_context=named_context)
        _, manifest, _ = images.read_image(self.store, desc, self.platform)
        return self._rootfs(list(manifest.layers), ref)

    def _rootfs(self, layers: list[Descriptor], what: str) -> Path:
        if self.read_only and layers:
            from layerbuild.store.snapshots import chain_ids

            kept = self.store.snapshots.path(chain_ids(layers)[-1])
            if not kept.is_dir():
                raise Unavailable(f"reads the files of {what}: a build would unpack them")
            return kept
        return self.store.snapshots.rootfs(self.store, layers)


def base_layers(descriptors: tuple[Descriptor, ...], config: ImageConfig) -> tuple[Layer, ...]:
    """A base image's layers from its manifest's descriptors and its config's diff_ids."""
    if len(descriptors) != len(config.diff_ids):
        raise BuildError(
            f"base image is inconsistent: {len(descriptors)} layers but "
            f"{len(config.diff_ids)} diff_ids in its config",
            hint="re-create or re-load the base image",
        )
    return tuple(
        Layer(diff_id, d.digest, d.size, d.media_type)
        for d, diff_id in zip(descriptors, config.diff_ids, strict=True)
    )
