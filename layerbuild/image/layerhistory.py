"""Which history entry made which layer, what kind of instruction it was, and what to do about
the bytes one layer wrote and another hid.

A config's history has one entry per instruction, layer or not; entries marked `empty_layer`
made none. Layers pair with the other entries in order, as docker and dive pair them; an image
whose history is short (history is optional) leaves its last layers without one.

History keeps the instruction's text, not its Dockerfile line, so the hints name a layer and
its history step (the 1-based position `layerbuild history` lists, oldest first) and quote the
instruction; they never guess a line number.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from layerbuild.image.config import History
from layerbuild.image.waste import HiddenBy

_NOP = re.compile(r"^/bin/sh -c #\(nop\)\s*")
_SHELL = re.compile(r"^/bin/(ba)?sh -c ")


@dataclass(frozen=True)
class LayerOrigin:
    """The history entry of one layer: its step (1-based) and text; step 0: none."""

    step: int
    created_by: str
    comment: str = ""

    @property
    def keyword(self) -> str:
        """RUN, COPY, ADD, ... as far as the text tells; '' when it does not."""
        return instruction_keyword(self.created_by)

    def label(self, width: int = 60) -> str:
        text = " ".join(self.created_by.split())
        if len(text) > width:
            text = text[: width - 1] + "…"
        return f"step {self.step} `{text}`" if self.step else "(no history entry)"


def pair_history(history: Sequence[History], layers: int) -> list[LayerOrigin]:
    """One LayerOrigin per layer, skipping `empty_layer` entries."""
    made = [(i + 1, h) for i, h in enumerate(history) if not h.empty_layer]
    return [
        LayerOrigin(made[n][0], made[n][1].created_by, made[n][1].comment)
        if n < len(made)
        else LayerOrigin(0, "")
        for n in range(layers)
    ]


def instruction_keyword(created_by: str) -> str:
    """The Dockerfile keyword of a history text: BuildKit's and ours start with it; the
    classic builder's read `/bin/sh -c #(nop) COPY ...`, or `/bin/sh -c <command>` for RUN."""
    text = created_by.strip()
    nop = _NOP.match(text)
    if nop:
        text = text[nop.end() :]
    elif _SHELL.match(text):
        return "RUN"
    word = text.split(None, 1)[0] if text else ""
    return word.upper() if word.isalpha() and word.isupper() else ""


def fix_hint(added: LayerOrigin, removed: LayerOrigin, how: HiddenBy) -> str:
    """What would keep the bytes out of the image."""
    both_run = added.keyword == "RUN" and removed.keyword == "RUN"
    if how is HiddenBy.REPLACED:
        if both_run:
            return "write it once: merge the two RUNs, or write it only in the later one"
        return "write it once, in the later step; the earlier copy still ships"
    if added.step == 0 or removed.step == 0:
        return "remove it in the layer that writes it; a later delete only hides it"
    if both_run:
        return "do both in one RUN (create, use and delete it in the same step)"
    if added.keyword in ("COPY", "ADD"):
        return (
            "keep it out of the COPY (.dockerignore or a narrower source), or build it in "
            "another stage and COPY --from only what the image needs"
        )
    return "remove it in the step that writes it; deleting it later only hides it"
