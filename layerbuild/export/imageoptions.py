"""The image exporters' options of `--output` (type=oci, docker, registry, image), as BuildKit
reads them (`exporter/containerimage/opts.go`, `util/compression/attrs.go`).

- `compression=gzip|zstd|uncompressed`: the compression of the layers this build's steps made;
  base image layers keep theirs unless `force-compression=true` (BuildKit: "newly created
  layers", and `force-compression` for all of them). Without `compression=`, layers stay as
  stored (`build --compression`); `force-compression` or `compression-level` alone mean gzip,
  BuildKit's default.
- `compression-level=N`: gzip 0-9 (BuildKit's range, mapped onto isal's four levels, see
  GZIP_LEVEL_MAP), zstd 0-22; it applies to the layers that are converted.
- `force-compression=BOOL`, `oci-mediatypes=BOOL` (false: Docker media types for the manifest,
  its config and its layers; an index becomes a Docker manifest list).
- `annotation.KEY=V` (the manifest), `annotation-manifest.`, `annotation-index.`,
  `annotation-manifest-descriptor.`, `annotation-index-descriptor.`, the manifest forms with an
  optional `[os/arch]` after the type, as BuildKit's `exptypes.ParseAnnotationKey` reads them.

Booleans take Go's strconv.ParseBool values (BuildKit parses them so). Pure: values in, values
or OutputSpecError out; the CLI turns those into usage errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from layerbuild.errors import AnnotationSpecError, OutputSpecError
from layerbuild.image.annotations import (
    INDEX,
    INDEX_DESCRIPTOR,
    MANIFEST,
    MANIFEST_DESCRIPTOR,
    Annotations,
    parse_annotations,
)
from layerbuild.image.descriptor import Platform

COMPRESSIONS = {"gzip": "gzip", "zstd": "zstd", "uncompressed": "none"}
KEYS = ("compression", "compression-level", "force-compression", "oci-mediatypes")
GZIP_LEVELS = range(0, 10)
ZSTD_LEVELS = range(0, 23)
# BuildKit's gzip levels (Go's compress/gzip, 0-9) onto isal's 0-3: isal 1 is about zlib 1-3,
# isal 2 (its default) about zlib 6, isal 3 about zlib 9
GZIP_LEVEL_MAP = {0: 0, 1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 2, 7: 3, 8: 3, 9: 3}
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")
_ANNOTATION = re.compile(r"^annotation(?:-([a-z-]+))?(?:\[([A-Za-z0-9_/-]+)\])?\.(\S+)$")
_TYPES = (MANIFEST, INDEX, MANIFEST_DESCRIPTOR, INDEX_DESCRIPTOR)


@dataclass(frozen=True, slots=True)
class ImageOptions:
    """What an image exporter does to the built image before it writes it."""

    compression: str | None = None  # "gzip" | "zstd" | "none"; None: as stored
    level: int | None = None  # the encoder's level (isal's for gzip); None: its default
    force: bool = False  # convert base image layers too
    oci_mediatypes: bool = True
    annotations: Annotations = field(default_factory=Annotations)

    @property
    def changes_image(self) -> bool:
        """Whether the exported image can differ from the stored one."""
        return (
            self.compression is not None
            or not self.oci_mediatypes
            or self.annotations != Annotations()
        )


def is_image_option(key: str) -> bool:
    return key in KEYS or key.startswith("annotation")


def parse_image_options(fields: Mapping[str, str], platform: Platform) -> ImageOptions:
    """The image options among an --output's `fields` (keys as written, already split)."""
    compression = _compression(fields.get("compression"))
    force = _bool(fields, "force-compression", default=False, empty=True)
    oci = _bool(fields, "oci-mediatypes", default=True, empty=False)
    if compression is None and (force or "compression-level" in fields):
        compression = "gzip"  # BuildKit's default compression
    level = _level(fields.get("compression-level"), compression)
    annotations = _annotations(
        ((k, v) for k, v in fields.items() if k.startswith("annotation")), platform
    )
    if not oci and (
        annotations.index or annotations.index_descriptor or annotations.manifest_descriptor
    ):
        raise OutputSpecError(
            "cannot export index, index-descriptor or manifest-descriptor annotations with "
            "oci-mediatypes=false (Docker media types have no place for them)"
        )
    return ImageOptions(compression, level, force, oci, annotations)


def _compression(value: str | None) -> str | None:
    if value is None:
        return None
    if value not in COMPRESSIONS:
        raise OutputSpecError(
            f"compression={value!r} is not supported: use {', '.join(COMPRESSIONS)}"
        )
    return COMPRESSIONS[value]


def _bool(fields: Mapping[str, str], key: str, *, default: bool, empty: bool) -> bool:
    """A boolean as Go's strconv.ParseBool reads it; `empty`: what a bare `key=` means
    (BuildKit takes `force-compression=` as true)."""
    value = fields.get(key)
    if value is None:
        return default
    if value == "" and empty:
        return True
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise OutputSpecError(f"{key}={value!r} is not a boolean: use true or false")


def _level(value: str | None, compression: str | None) -> int | None:
    if value is None:
        return None
    try:
        level = int(value)
    except ValueError:
        raise OutputSpecError(f"compression-level={value!r} is not a whole number") from None
    if compression == "none":
        raise OutputSpecError(
            "compression-level has no meaning with compression=uncompressed: leave it out"
        )
    levels = GZIP_LEVELS if compression == "gzip" else ZSTD_LEVELS
    if level not in levels:
        raise OutputSpecError(
            f"compression-level={level} is out of range for {compression}: "
            f"use {levels.start}-{levels.stop - 1}"
        )
    return GZIP_LEVEL_MAP[level] if compression == "gzip" else level


def _annotations(items: Iterable[tuple[str, str]], platform: Platform) -> Annotations:
    """annotation keys rewritten into --annotation's `TYPE[PLATFORM]:KEY=V` form, so that one
    parser (image/annotations.py) checks levels and platforms for both."""
    values = []
    for key, value in items:
        match = _ANNOTATION.match(key)
        if match is None:
            raise OutputSpecError(
                f"{key!r} is not an annotation key: use annotation.KEY=V or "
                "annotation-TYPE.KEY=V with TYPE one of " + ", ".join(_TYPES)
            )
        kind, qualifier, name = match.groups()
        if kind is not None and kind not in _TYPES:
            raise OutputSpecError(
                f"{key!r}: unknown annotation type {kind!r}: use one of {', '.join(_TYPES)}"
            )
        level = (kind or MANIFEST) + (f"[{qualifier}]" if qualifier else "")
        values.append(f"{level}:{name}={value}")
    try:
        return parse_annotations(values, platform)
    except AnnotationSpecError as e:
        raise OutputSpecError(str(e)) from None
