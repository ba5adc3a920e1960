"""`--output` specs as docker buildx writes them, and writing an image to one.

`type=oci,dest=img.tar` (OCI tarball), `type=oci,dest=DIR,tar=false` (OCI layout directory),
`type=docker,dest=img.tar` (docker-archive), `type=local,dest=DIR` (the final rootfs),
`type=tar,dest=F` (the final rootfs as one tar, as buildx writes it), `type=registry` (push
the tags; done by the CLI), `type=image` (the store only: the default). A bare value is
buildx's shorthand for `type=local,dest=VALUE`; `dest=-` writes a tarball to stdout.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from layerbuild.errors import ExportError
from layerbuild.image.descriptor import Descriptor
from layerbuild.store.layout import Store

TYPES = ("oci", "docker", "local", "image", "tar", "registry")
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


@dataclass(frozen=True)
class OutputSpec:
    type: str
    dest: str | None = None
    tar: bool = True


def parse_output(spec: str) -> OutputSpec:
    """Parse one --output value; ExportError with the accepted forms when it is malformed."""
    if "=" not in spec:
        return OutputSpec("local", spec)
    fields: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise _bad(spec, f"{part!r} is not key=value")
        fields[key.strip().lower()] = value.strip()
    kind = fields.pop("type", None)
    if kind not in TYPES:
        raise _bad(spec, f"type must be one of {', '.join(TYPES)}")
    dest = fields.pop("dest", None)
    tar_text = fields.pop("tar", "true").lower()
    if tar_text not in _TRUE + _FALSE:
        raise _bad(spec, "tar must be true or false")
    for ignored in ("name", "push", "compression", "oci-mediatypes"):
        fields.pop(ignored, None)
    if fields:
        raise _bad(spec, f"unknown option(s): {', '.join(sorted(fields))}")
    if kind in ("oci", "docker", "local", "tar") and not dest:
        raise _bad(spec, f"type={kind} needs dest=PATH")
    if kind == "local" and dest == "-":
        raise _bad(spec, "type=local writes a directory; use type=tar,dest=- for a stream")
    return OutputSpec(kind, dest, tar_text in _TRUE)


def _bad(spec: str, why: str) -> ExportError:
    return ExportError(
        f"bad --output {spec!r}: {why}",
        hint="use type=oci,dest=img.tar | type=oci,dest=DIR,tar=false | "
        "type=docker,dest=img.tar | type=local,dest=DIR",
    )


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
