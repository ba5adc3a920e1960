"""`--output` specs as docker buildx writes them, and writing an image to one.

`type=oci,dest=img.tar` (OCI tarball), `type=oci,dest=DIR,tar=false` (OCI layout directory),
`type=docker,dest=img.tar` (docker-archive), `type=local,dest=DIR` (the final rootfs),
`type=tar,dest=F` (the final rootfs as one tar, as buildx writes it), `type=registry` (push
the tags; done by the CLI), `type=image` (the store only: the default). A bare value is
buildx's shorthand for `type=local,dest=VALUE`; `dest=-` writes a tarball to stdout.

The image types (oci, docker, registry, image) also take BuildKit's image exporter options
(imageoptions.py); imagerewrite.py makes the image they describe before it is written.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from layerbuild.errors import ExportError, OutputSpecError
from layerbuild.export.imageoptions import ImageOptions, is_image_option, parse_image_options
from layerbuild.image.descriptor import Descriptor, Platform
from layerbuild.store.layout import Store

TYPES = ("oci", "docker", "local", "image", "tar", "registry")
IMAGE_TYPES = ("oci", "docker", "image", "registry")  # take the image options (imageoptions.py)
FORMS = (
    "type=oci,dest=img.tar | type=oci,dest=DIR,tar=false | type=docker,dest=img.tar | "
    "type=local,dest=DIR | type=tar,dest=F | type=registry | type=image; image types also take "
    "compression=, compression-level=, force-compression=, oci-mediatypes=, annotation.K=V"
)
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_IGNORED = ("name", "push")  # buildx sends these; the tags and --push say the same


@dataclass(frozen=True)
class OutputSpec:
    type: str
    dest: str | None = None
    tar: bool = True
    image: ImageOptions = field(default_factory=ImageOptions)


def parse_output(spec: str, platform: Platform | None = None) -> OutputSpec:
    """Parse one --output value for a build of `platform` (annotations may name one).

    OutputSpecError names the option and the accepted values when anything is unknown. Fields
    are CSV, as buildx reads them, so a quoted value may hold a comma."""
    if "=" not in spec:
        return OutputSpec("local", spec)
    fields: dict[str, str] = {}
    for part in _csv_fields(spec):
        key, sep, value = part.partition("=")
        if not sep:
            raise _bad(spec, f"{part!r} is not key=value")
        fields[key.strip().lower() if not key.startswith("annotation") else key] = value.strip()
    kind = fields.pop("type", None)
    if kind not in TYPES:
        raise _bad(spec, f"type must be one of {', '.join(TYPES)}")
    dest = fields.pop("dest", None)
    tar_text = fields.pop("tar", "true").lower()
    if tar_text not in _TRUE + _FALSE:
        raise _bad(spec, f"tar={tar_text!r}: use true or false")
    for ignored in _IGNORED:
        fields.pop(ignored, None)
    unknown = sorted(k for k in fields if kind not in IMAGE_TYPES or not is_image_option(k))
    if unknown:
        what = "" if kind in IMAGE_TYPES else f" (type={kind} is not an image output)"
        raise _bad(spec, f"unknown option(s) {', '.join(unknown)}{what}")
    if kind in ("oci", "docker", "local", "tar") and not dest:
        raise _bad(spec, f"type={kind} needs dest=PATH")
    if kind == "local" and dest == "-":
        raise _bad(spec, "type=local writes a directory; use type=tar,dest=- for a stream")
    try:
        image = parse_image_options(fields, platform or Platform())
    except OutputSpecError as e:
        raise _bad(spec, str(e)) from None
    return OutputSpec(kind, dest, tar_text in _TRUE, image)


def _csv_fields(spec: str) -> list[str]:
    try:
        return next(csv.reader([spec], strict=True), [])
    except csv.Error as e:
        raise _bad(spec, f"not comma-separated values: {e}") from None


def _bad(spec: str, why: str) -> OutputSpecError:
    return OutputSpecError(f"bad --output {spec!r}: {why}; accepted: {FORMS}")


def write_output(store: Store, desc: Descriptor, spec: OutputSpec, tags: Sequence[str]) -> str:
    """Write the image to `spec`; returns a one-line description of what was written."""
    if spec.type == "image":
        return "image kept in the store"
    if spec.type == "registry":
        raise ExportError("type=registry is pushed by the caller, not written here")
    assert spec.dest is not None
    # the writers (tar, codecs) are imported when one is used: a plain build never needs them
    from layerbuild.export.docker_tar import write_docker_tar
    from layerbuild.export.oci_layout import write_oci_layout
    from layerbuild.export.oci_tar import write_oci_tar
    from layerbuild.export.rootfs import write_rootfs, write_rootfs_tar

    if spec.dest != "-":
        Path(spec.dest).absolute().parent.mkdir(parents=True, exist_ok=True)
    if spec.type == "tar":
        write_rootfs_tar(store, desc, sys.stdout.buffer if spec.dest == "-" else Path(spec.dest))
        return f"rootfs tarball written to {spec.dest}"
    if spec.type == "local":
        write_rootfs(store, desc, Path(spec.dest))
        return f"rootfs written to {spec.dest}"
    if spec.type == "oci" and not spec.tar:
        write_oci_layout(store, desc, Path(spec.dest), tags)
        return f"OCI layout written to {spec.dest}"
    target = sys.stdout.buffer if spec.dest == "-" else Path(spec.dest)
    if spec.type == "oci":
        write_oci_tar(store, desc, target, tags)
        return f"OCI tarball written to {spec.dest}"
    write_docker_tar(store, desc, target, tags)
    return f"docker archive written to {spec.dest}"
