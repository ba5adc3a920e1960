"""Two images' layers paired up, and for each pair that differs, why.

Pairing: layers are matched by the history entry that made them (its `created_by` text), with
difflib's longest matching runs, so a step inserted in one image does not shift every later
pair; runs of unmatched layers on both sides pair up by position, and whatever is left over
exists in one image only. Layers without history are matched by their diff_id.

Why a pair differs, judged from the images alone (a build's record would know more):
- `instruction`: the history texts differ: the step itself changed;
- `parent`: the same step on another parent: a layer below it differs in more than mtimes
  (the nearest such layer is named), or an earlier step does (ENV, ARG, ... or a step whose
  layer holds the same files);
- `mtime-only`: the same step on the same parent wrote the same files with other mtimes (it
  ran at another time; SOURCE_DATE_EPOCH clamps them). A parent that differs only so is not
  counted as a different parent, so the step above it that really differs is the one named;
- `not reproducible`: the same RUN on the same parent wrote other bytes (a timestamp, a
  random value, a download; or a build arg or secret, which history does not record);
- `sources`: the same COPY/ADD on the same parent: history does not record the content of the
  files it copied, so they differ (or the step is not reproducible);
- `recompressed`: the same files (diff_id) in another blob (compression);
- `tar only`: the same entries, in a tar that differs otherwise (entry order, headers);
- `only in a` / `only in b`.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from layerbuild.digest import Digest
from layerbuild.image.config import ImageConfig
from layerbuild.image.layerhistory import LayerOrigin, pair_history
from layerbuild.image.manifest import Layer

SAME, RECOMPRESSED, TAR_ONLY = "same", "recompressed", "tar only"
INSTRUCTION, PARENT, MTIME_ONLY = "instruction", "parent", "mtime-only"
NOT_REPRODUCIBLE, SOURCES = "not reproducible", "sources"
ONLY_A, ONLY_B = "only in a", "only in b"


@dataclass(frozen=True)
class LayerSide:
    """One image's layer: its position (0-based), blob, history entry, and the texts of
    every history entry before that one (the steps its parent went through)."""

    index: int
    layer: Layer
    origin: LayerOrigin
    steps_before: tuple[str, ...]

    @property
    def diff_id(self) -> Digest:
        return self.layer.diff_id

    @property
    def key(self) -> str:
        return self.origin.created_by if self.origin.step else str(self.diff_id)


@dataclass(frozen=True)
class LayerPair:
    a: LayerSide | None
    b: LayerSide | None
    verdict: str
    reason: str

    @property
    def differs(self) -> bool:
        return self.verdict not in (SAME, RECOMPRESSED)


def layer_sides(config: ImageConfig, layers: Sequence[Layer]) -> list[LayerSide]:
    """The layers of one image with their history."""
    texts = [h.created_by for h in config.history]
    out = []
    origins = pair_history(config.history, len(layers))
    for i, (layer, origin) in enumerate(zip(layers, origins, strict=True)):
        before = tuple(texts[: origin.step - 1]) if origin.step else ()
        out.append(LayerSide(i, layer, origin, before))
    return out


Matched = tuple[LayerSide | None, LayerSide | None]


def pair_layers(a: Sequence[LayerSide], b: Sequence[LayerSide]) -> list[Matched]:
    """The layers of both images paired up, bottom first (None: the other has no partner)."""
    matcher = difflib.SequenceMatcher(None, [s.key for s in a], [s.key for s in b], False)
    matched: list[Matched] = []
    for _, i1, i2, j1, j2 in matcher.get_opcodes():
        left, right = list(a[i1:i2]), list(b[j1:j2])
        common = min(len(left), len(right))
        matched += zip(left[:common], right[:common], strict=True)
        matched += [(x, None) for x in left[common:]]
        matched += [(None, y) for y in right[common:]]
    return matched


@dataclass(frozen=True)
class FilesDiffer:
    """What the file comparison of a pair found: any entry at all, anything beyond mtimes."""

    any: bool
    beyond_mtime: bool


def judge(matched: Sequence[Matched], files: Sequence[FilesDiffer]) -> list[LayerPair]:
    """Each pair's verdict, bottom first; `files`: what its layers' entries differ in."""
    out: list[LayerPair] = []
    parents: list[LayerPair] = []  # pairs below whose files differ in more than mtimes
    for (x, y), found in zip(matched, files, strict=True):
        verdict, reason = _verdict(x, y, found, parents)
        out.append(LayerPair(x, y, verdict, reason))
        if x is None or y is None or (x.diff_id != y.diff_id and found.beyond_mtime):
            parents.append(out[-1])
    return out


def _verdict(
    a: LayerSide | None, b: LayerSide | None, files: FilesDiffer, parents: Sequence[LayerPair]
) -> tuple[str, str]:
    if a is None:
        return ONLY_B, "a layer only the second image has"
    if b is None:
        return ONLY_A, "a layer only the first image has"
    if a.diff_id == b.diff_id:
        if a.layer.digest == b.layer.digest:
            return SAME, ""
        return RECOMPRESSED, "the same files in another blob (compression)"
    if a.origin.created_by != b.origin.created_by:
        return INSTRUCTION, "the instruction differs"
    if parents:
        return PARENT, f"its parent differs: {_describe(parents[-1])}"
    earlier = _first_difference(a.steps_before, b.steps_before)
    if earlier:
        return PARENT, f"an earlier step differs: {earlier}"
    return _same_inputs(a.origin.keyword, files)


def _same_inputs(keyword: str, files: FilesDiffer) -> tuple[str, str]:
    """The verdict of a step that ran with the same inputs, as far as the images tell."""
    if not files.any:
        return TAR_ONLY, "the same entries in a tar that differs otherwise (order, headers)"
    if not files.beyond_mtime:
        return MTIME_ONLY, (
            "the same files with other mtimes: the step ran at another time "
            "(SOURCE_DATE_EPOCH clamps them)"
        )
    if keyword in ("COPY", "ADD"):
        return SOURCES, (
            f"the same {keyword} on the same parent: the files it copied differ (history does "
            "not record their content), or the step is not reproducible"
        )
    return NOT_REPRODUCIBLE, (
        "the same instruction on the same parent gave another output (or an input history "
        "does not record differs: a build arg, a secret, the network)"
    )


def _describe(pair: LayerPair) -> str:
    side = pair.a or pair.b
    assert side is not None
    return f"layer {side.index + 1} ({pair.verdict})"


def _first_difference(a: Sequence[str], b: Sequence[str]) -> str:
    for x, y in zip(a, b, strict=False):  # the longer one's rest: below
        if x != y:
            return f"`{_short(x)}` / `{_short(y)}`"
    if len(a) != len(b):
        longer = a if len(a) > len(b) else b
        return f"`{_short(longer[min(len(a), len(b))])}` in one image only"
    return ""


def _short(text: str, width: int = 50) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
