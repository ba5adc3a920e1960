"""Test images for the exporter tests, built straight into a store.

Layers are made here with tarfile and gzip, independently of layerbuild's own tar writer, so
that these tests check the exporters and not the layer writer.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ContainerConfig, ImageConfig
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Manifest
from layerbuild.store.layout import Store

# path -> file content (bytes), a directory (None), a symlink target ("-> target") or a hard
# link's target ("=> target")
LayerSpec = Mapping[str, bytes | str | None]


def layer_tar(files: LayerSpec) -> bytes:
    """An uncompressed layer tar with fixed metadata; entries in the order given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in files.items():
            info = tarfile.TarInfo(path)
            info.mtime = 1_700_000_000
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, str) and content.startswith("=> "):
                info.type, info.linkname = tarfile.LNKTYPE, content.removeprefix("=> ")
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content.removeprefix("-> ")
                tar.addfile(info)
            else:
                info.mode, info.size = 0o644, len(content)
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


@dataclass(frozen=True)
class BuiltImage:
    desc: Descriptor
    manifest: Manifest
    config_bytes: bytes
    layer_tars: tuple[bytes, ...]  # uncompressed, in order


ImageFactory = Callable[..., BuiltImage]


def build_image(store: Store, layers: list[LayerSpec], *, compress: bool = True) -> BuiltImage:
    """Write config, layers and manifest of an image into `store`; returns its descriptor."""
    tars = tuple(layer_tar(spec) for spec in layers)
    descs = []
    for raw in tars:
        blob = gzip.compress(raw, mtime=0) if compress else raw
        digest = store.content.put_bytes(blob)
        media_type = mt.OCI_LAYER_GZIP if compress else mt.OCI_LAYER
        descs.append(Descriptor(media_type, digest, len(blob)))
    config = ImageConfig(
        config=ContainerConfig(cmd=("/bin/sh",), env=("PATH=/usr/bin:/bin",)),
        diff_ids=tuple(Digest(sha256_bytes(raw)) for raw in tars),
    )
    config_bytes = config.to_bytes()
    config_digest = store.content.put_bytes(config_bytes)
    manifest = Manifest(Descriptor(mt.OCI_CONFIG, config_digest, len(config_bytes)), tuple(descs))
    desc = manifest.descriptor()
    store.content.put_bytes(manifest.to_bytes(), expected=desc.digest)
    return BuiltImage(desc, manifest, config_bytes, tars)


DEFAULT_LAYERS: list[LayerSpec] = [
    {"etc": None, "etc/hostname": b"box\n", "bin": None, "bin/sh": b"#!shell\n"},
    {"app": None, "app/main.txt": b"hello\n", "app/link": "-> main.txt", ".wh.bin": b""},
]
