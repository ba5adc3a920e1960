"""docker-archive tarballs in the shape `docker save` writes since Docker 25.

That shape is an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`) plus the two
files older loaders read: `manifest.json` (`[{"Config", "RepoTags", "Layers"}]`, paths into
`blobs/`) and `repositories` (`{repo: {tag: <hex of the top layer>}}`). New loaders (Docker >=
25, containerd) use the layout; older Docker and containers/image (`podman load`, skopeo's
`docker-archive:` transport) use `manifest.json`.

The layer files are the image's own blobs, compressed as they are in the store (normally gzip),
so `manifest.json` and the OCI manifest point at the same files and nothing is stored twice.
Loaders that read `manifest.json` decompress layer files themselves: `docker load` detects the
compression of each file, and containers/image's docker-archive source (`podman pull
docker-archive:FILE`, `skopeo ... docker-archive:FILE`) decompresses them as it reads them.
`podman load -i` tries the OCI-archive transport first, so it reads these files through
`index.json`. Both routes are checked with podman 4.3 and skopeo 1.9 in
tests/integration/test_export_tools.py.

A multi-platform image is exported as the platform manifest that `read_image` selects: a
docker-archive entry describes exactly one config and one list of layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from layerbuild.digest import canonical_json
from layerbuild.export.oci_layout import blob_name
from layerbuild.export.oci_tar import bytes_member, layout_members, write_archive
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Manifest
from layerbuild.registry.reference import DEFAULT_TAG, normalize_tag, parse_reference
from layerbuild.store.images import read_image

if TYPE_CHECKING:
    from layerbuild.store.layout import Store

MANIFEST_FILE = "manifest.json"
REPOSITORIES_FILE = "repositories"


def docker_manifest(manifest: Manifest, tags: Sequence[str]) -> list[dict[str, Any]]:
    """The `manifest.json` of a docker-archive holding one image."""
    return [
        {
            "Config": blob_name(manifest.config.digest),
            "RepoTags": [normalize_tag(t) for t in tags],
            "Layers": [blob_name(layer.digest) for layer in manifest.layers],
        }
    ]


def docker_repositories(manifest: Manifest, tags: Sequence[str]) -> dict[str, dict[str, str]]:
    """The legacy `repositories` file: familiar repository -> tag -> hex of the top layer."""
    if not manifest.layers:
        return {}
    top = manifest.layers[-1].digest.hex
    repos: dict[str, dict[str, str]] = {}
    for tag in tags:
        ref = parse_reference(tag)
        repos.setdefault(ref.familiar_name, {})[ref.tag or DEFAULT_TAG] = top
    return repos


def write_docker_tar(
    store: Store, desc: Descriptor, dest: Path | BinaryIO, tags: Sequence[str]
) -> None:
    """Write the image `desc` as a docker-archive tarball (`docker load -i`, `podman load -i`)."""
    manifest_desc, manifest, _config = read_image(store, desc)
    members = layout_members(store, manifest_desc, tags)
    members.append(bytes_member(MANIFEST_FILE, canonical_json(docker_manifest(manifest, tags))))
    repositories = docker_repositories(manifest, tags)
    if repositories:
        members.append(bytes_member(REPOSITORIES_FILE, canonical_json(repositories)))
    write_archive(dest, members)
