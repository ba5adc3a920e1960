"""`--annotation` values as buildx spells them, sorted by where they go in the image.

`KEY=VALUE` goes on the image manifest. A prefix names other levels, several separated by
commas: `manifest:`, `index:`, `manifest-descriptor:` (the manifest's descriptor, in the index
or the layout's index.json), `index-descriptor:` (the index's descriptor in index.json);
`manifest[linux/amd64]:` restricts one to a platform (buildx `util/buildflags/export.go`,
BuildKit `exporter/containerimage/annotations.go`). A later value for the same level and key
wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from layerbuild.errors import AnnotationSpecError
from layerbuild.image.descriptor import Platform

MANIFEST = "manifest"
INDEX = "index"
MANIFEST_DESCRIPTOR = "manifest-descriptor"
INDEX_DESCRIPTOR = "index-descriptor"
TYPES = (MANIFEST, INDEX, MANIFEST_DESCRIPTOR, INDEX_DESCRIPTOR)

_TYPE = re.compile(r"^([a-z-]+)(?:\[([A-Za-z0-9_/-]+)\])?$")
_KEY = re.compile(r"^\S+$")  # BuildKit's exporter key pattern: no blanks

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Annotations:
    """Annotations by level, each sorted by key."""

    manifest: Pairs = ()
    index: Pairs = ()
    manifest_descriptor: Pairs = ()
    index_descriptor: Pairs = ()

    @property
    def wants_index(self) -> bool:
        """Whether the image needs an index to carry them (buildx makes one whenever it
        has attestations or several platforms; a lone manifest has nowhere to put these)."""
        return bool(self.index or self.index_descriptor)


def parse_annotations(values: Iterable[str], platform: Platform) -> Annotations:
    """Parse --annotation values for an image built for `platform`.

    A platform-qualified manifest or manifest-descriptor annotation for another platform is an
    error, as in BuildKit ("no platform ... found"); index levels ignore the qualifier."""
    levels: dict[str, dict[str, str]] = {t: {} for t in TYPES}
    for text in values:
        if not text:
            continue
        head, sep, value = text.partition("=")
        if not sep:
            raise AnnotationSpecError(f"invalid annotation {text!r}, expected key=value")
        types, colon, key = head.partition(":")
        if not colon:
            types, key = "", head
        if not _KEY.match(key):
            raise AnnotationSpecError(f"invalid annotation key {key!r} in {text!r}")
        for level in _levels(types, platform) if types else (MANIFEST,):
            levels[level][key] = value
    return Annotations(
        manifest=_sorted(levels[MANIFEST]),
        index=_sorted(levels[INDEX]),
        manifest_descriptor=_sorted(levels[MANIFEST_DESCRIPTOR]),
        index_descriptor=_sorted(levels[INDEX_DESCRIPTOR]),
    )


def _sorted(pairs: dict[str, str]) -> Pairs:
    return tuple(sorted(pairs.items()))


def _levels(types: str, platform: Platform) -> list[str]:
    out: list[str] = []
    for part in types.split(","):
        match = _TYPE.match(part)
        if match is None:
            raise AnnotationSpecError(
                f"invalid annotation type {part!r}, expected type and optional platform in "
                "square brackets"
            )
        level, qualifier = match.groups()
        if level not in TYPES:
            raise AnnotationSpecError(f"unknown annotation type {level!r}: use {', '.join(TYPES)}")
        if qualifier and level in (MANIFEST, MANIFEST_DESCRIPTOR):
            try:
                wanted = Platform.parse(qualifier)
            except ValueError as e:
                raise AnnotationSpecError(f"invalid platform {qualifier!r}: {e}") from None
            if wanted != platform:
                raise AnnotationSpecError(
                    f"invalid annotation: no platform {qualifier} in this build "
                    f"(it builds {platform})"
                )
        out.append(level)
    return out
