"""The analyze view: block bars and red waste on a terminal, plain ASCII anywhere else, with
the same rows; and the JSON form of the same analysis."""

from __future__ import annotations

import json

from layerbuild.analyze.report import analyze, to_json
from layerbuild.analyze.source import ImageInput
from layerbuild.digest import sha256_bytes
from layerbuild.image import mediatypes as mt
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.config import History, ImageConfig
from layerbuild.image.manifest import Layer
from layerbuild.ui.analysis import render

K = ChangeKind


def _image() -> ImageInput:
    entries = [
        [Change("bin", K.DIR), Change("bin/sh", K.FILE, size=1000)],
        [Change("big", K.FILE, size=4000)],
        [Change("big", K.WHITEOUT)],
    ]
    layers = [Layer(sha256_bytes(bytes([i])), sha256_bytes(bytes([i])), 10, mt.OCI_LAYER_GZIP)
              for i in range(3)]  # fmt: skip
    history = (
        History(created_by="ADD rootfs.tar /"),
        History(created_by="ENV A=1", empty_layer=True),
        History(created_by="RUN make big"),
        History(created_by="RUN rm /big"),
    )
    config = ImageConfig(diff_ids=tuple(x.diff_id for x in layers), history=history)
    return ImageInput("demo:1", layers, entries, config)


def test_off_a_terminal_the_view_is_plain_ascii() -> None:
    text = render(analyze(_image()), terminal=False)
    assert text.isascii() and "\x1b[" not in text
    assert "/big (1 file): written by layer 1 (step 3 `RUN make big`), deleted by layer 2" in text
    assert "fix: do both in one RUN" in text
    assert "xxxxxxxxxxxxxxxxxxxx" in text  # layer 1: the biggest, all of it wasted
    assert "Dive's numbers: efficiency 0.2000, wasted bytes 4000" in text


def test_on_a_terminal_bars_are_blocks_and_waste_is_red() -> None:
    text = render(analyze(_image()), terminal=True)
    assert "\x1b[31m" in text and "█" in text
    assert "└─ bin/  1.0kB  0.0% wasted" in text


def test_the_json_form() -> None:
    report = json.loads(json.dumps(to_json(analyze(_image()))))
    assert report["wasted_bytes"] == 4000
    assert [layer["history_step"] for layer in report["layers"]] == [1, 3, 4]
    assert report["wasted_paths"][0]["path"] == "/big"
    assert report["dive"]["user_wasted_percent"] == 1.0
    assert report["ci"] == []
