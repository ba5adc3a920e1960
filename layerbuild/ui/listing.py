"""What `images`, `inspect`, `history` and `rmi` show: the store's images as text and JSON."""

from __future__ import annotations

import json
from typing import Any

from layerbuild.errors import ImageNotFound
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Descriptor, Platform
from layerbuild.image.manifest import Index, Manifest
from layerbuild.registry.reference import normalize_tag
from layerbuild.store import images as store_images
from layerbuild.store.layout import Store


def human_size(size: int) -> str:
    """Decimal units, as docker prints image sizes: 1.0MB, 512B."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1000
    return f"{size}B"


def _image_size(manifest: Manifest) -> int:
    return manifest.config.size + sum(layer.size for layer in manifest.layers)


def platforms(store: Store, desc: Descriptor) -> list[Platform]:
    """The platforms of an image index (none for a single image)."""
    if desc.media_type not in mt.INDEXES:
        return []
    index = Index.from_bytes(store.content.read_bytes(desc.digest))
    return [m.platform for m in index.manifests if m.platform and m.platform.os != "unknown"]


def read(
    store: Store, desc: Descriptor, platform: Platform | None = None
) -> tuple[Descriptor, Manifest, ImageConfig]:
    """The image of `platform`; without one, an index's linux/amd64 image, else its first."""
    try:
        return store_images.read_image(store, desc, platform)
    except ImageNotFound:
        found = platforms(store, desc)
        if platform is not None or not found:
            raise
        return store_images.read_image(store, desc, found[0])


def images(store: Store, *, full: bool = False, fmt: str = "table") -> str:
    rows: list[dict[str, Any]] = []
    for name, desc in sorted(store.refs.list().items()):
        repo, _, tag = name.rpartition(":")
        _, manifest, config = read(store, desc)
        rows.append(
            {
                "repository": repo,
                "tag": tag,
                "digest": str(desc.digest),
                "created": config.created or "",
                "size": _image_size(manifest),
                "platforms": [str(p) for p in platforms(store, desc)],
            }
        )
    if fmt == "json":
        return json.dumps(rows, indent=2)
    lines = [f"{'REPOSITORY':<40} {'TAG':<16} {'DIGEST':<20} {'CREATED':<21} SIZE"]
    for row in rows:
        digest = row["digest"] if full else row["digest"].split(":")[1][:12]
        lines.append(
            f"{row['repository']:<40} {row['tag']:<16} {digest:<20} {row['created']:<21} "
            f"{human_size(row['size'])}"
        )
    return "\n".join(lines)


def inspect(store: Store, name: str, platform: Platform | None = None) -> dict[str, Any]:
    """The image (of `platform`, for an index) in skopeo-inspect's shape, plus the whole
    config."""
    desc = store_images.resolve(store, name)
    manifest_desc, manifest, config = read(store, desc, platform)
    tags = sorted(n for n, d in store.refs.list().items() if d.digest == desc.digest)
    cfg = config.config
    return {
        "Name": normalize_tag(name) if not name.startswith("sha256:") else None,
        "Digest": str(manifest_desc.digest),
        "RepoTags": tags,
        "Created": config.created,
        "Architecture": config.architecture,
        "Os": config.os,
        "Labels": dict(cfg.labels) or None,
        "Env": list(cfg.env),
        "Layers": [str(layer.digest) for layer in manifest.layers],
        "LayersData": [
            {"MIMEType": layer.media_type, "Digest": str(layer.digest), "Size": layer.size}
            for layer in manifest.layers
        ],
        "Config": cfg.to_json(),
        "ConfigDigest": str(manifest.config.digest),
        "MediaType": manifest_desc.media_type,
        "RootFS": {"Type": "layers", "DiffIDs": [str(d) for d in config.diff_ids]},
    }


def raw(
    store: Store, name: str, *, config: bool = False, platform: Platform | None = None
) -> str:
    """The manifest or config as stored; an index itself unless a platform or the config is
    asked for (as `skopeo inspect --raw` shows one)."""
    desc = store_images.resolve(store, name)
    if desc.media_type in mt.INDEXES and platform is None and not config:
        return store.content.read_bytes(desc.digest).decode()
    manifest_desc, manifest, _ = read(store, desc, platform)
    digest = manifest.config.digest if config else manifest_desc.digest
    return store.content.read_bytes(digest).decode()


def history(
    store: Store, name: str, *, trunc: bool = True, platform: Platform | None = None
) -> str:
    desc = store_images.resolve(store, name)
    _, manifest, config = read(store, desc, platform)
    sizes = iter(layer.size for layer in manifest.layers)
    lines = [f"{'CREATED':<21} {'SIZE':>8}  CREATED BY"]
    rows = []
    for entry in config.history:
        size = 0 if entry.empty_layer else next(sizes, 0)
        text = entry.created_by.replace("\n", "\\n")  # heredoc bodies stay on one row
        if trunc and len(text) > 70:
            text = text[:67] + "..."
        rows.append(f"{entry.created or '':<21} {human_size(size):>8}  {text}")
    lines.extend(reversed(rows))  # newest first, as docker history shows it
    return "\n".join(lines)


def untag(store: Store, name: str) -> str:
    normalized = normalize_tag(name)
    if not store.refs.delete(normalized):
        raise ImageNotFound(
            f"no image named {normalized}", hint="run `layerbuild images` to list images"
        )
    return normalized
