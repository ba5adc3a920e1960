"""efficiency(): dive's score, wasted bytes and user-wasted percent, each case computed by hand
from dive's definition (dive/filetree/efficiency.go, dive/image/analysis.go; the rules are in
layerbuild/image/efficiency.py's docstring)."""

from __future__ import annotations

import math

import pytest

from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.efficiency import Efficiency, efficiency

K = ChangeKind


def d(path: str) -> Change:
    return Change(path, K.DIR, 0o755)


def f(path: str, size: int) -> Change:
    return Change(path, K.FILE, size=size)


def wh(path: str) -> Change:
    return Change(path, K.WHITEOUT, 0)


BASE = [d("bin"), f("bin/sh", 1000), d("etc"), f("etc/passwd", 100)]  # 1100 bytes


def test_one_layer_is_fully_efficient() -> None:
    assert efficiency([BASE]) == Efficiency(1.0, 0, 1100, 0)


def test_an_empty_image_scores_one() -> None:
    assert efficiency([]) == Efficiency(1.0, 0, 0, 0)


def test_a_file_added_then_deleted() -> None:
    # /big: counted 400 (layer 1) and 0 (its whiteout: the file was not a directory):
    # sum 400, smallest 0, two layers -> wasted 400. Leaves bin/sh 1000, etc/passwd 100 count
    # once each; bin and etc have children (not leaves). Score = (1100 + 0) / (1100 + 400).
    eff = efficiency([BASE, [f("big", 400)], [wh("big")]])
    assert eff.score == pytest.approx(1100 / 1500)
    assert eff.wasted_bytes == 400
    # user size: layers 1 and 2 (400 + 0); 400 / 400
    assert (eff.size_bytes, eff.user_size_bytes, eff.user_wasted_percent) == (1500, 400, 1.0)


def test_a_file_written_twice_counts_both_copies_as_wasted() -> None:
    # /etc/app.conf: 300 then 500: sum 800, smallest 300 -> wasted 800 (dive counts both)
    # in layer 2, etc has a child (app.conf): not a leaf, not counted
    eff = efficiency([BASE, [f("etc/app.conf", 300)], [d("etc"), f("etc/app.conf", 500)]])
    assert eff.wasted_bytes == 800
    assert eff.score == pytest.approx((1100 + 300) / (1100 + 800))
    assert eff.user_wasted_percent == pytest.approx(800 / 800)


def test_a_deleted_directory_does_not_lower_dives_score() -> None:
    # layer 1: cache has children (not a leaf); cache/x 7 and cache/y 5 count once each.
    # layer 2: the whiteout of cache counts what was below it: 12; the path /cache is counted
    # only there, so it is no inefficiency: score 1, nothing wasted (dive's own blind spot).
    layer1 = [d("cache"), f("cache/x", 7), f("cache/y", 5)]
    eff = efficiency([BASE, layer1, [wh("cache")]])
    assert eff.score == 1.0
    assert eff.wasted_bytes == 0


def test_a_deleted_empty_directory_counts_what_a_later_layer_put_in_it() -> None:
    # layer 1: empty dir /d (a leaf, 0). layer 2: d/f 9 (d is not a leaf there).
    # layer 3: whiteout of d: 9 (d was a directory). /d: sums 0 + 9, smallest 0 -> wasted 9.
    eff = efficiency([BASE, [d("d")], [d("d"), f("d/f", 9)], [wh("d")]])
    assert eff.wasted_bytes == 9
    # sums: 1100 + d/f 9 + /d 9; smallest: 1100 + 9 + 0
    assert eff.score == pytest.approx(1109 / 1118)


def test_opaque_markers_are_ignored() -> None:
    layer1 = [d("srv"), f("srv/old", 40)]
    layer2 = [d("srv"), Change("srv", K.OPAQUE, 0), f("srv/new", 3)]
    eff = efficiency([BASE, layer1, layer2])
    assert (eff.score, eff.wasted_bytes) == (1.0, 0)


def test_a_whiteout_of_a_path_no_layer_had_counts_zero() -> None:
    eff = efficiency([BASE, [wh("nope"), f("new", 5)]])
    assert (eff.score, eff.wasted_bytes) == (1.0, 0)


def test_an_unchanged_empty_directory_in_two_layers_wastes_nothing() -> None:
    eff = efficiency([BASE, [d("tmp")], [d("tmp")]])
    assert (eff.score, eff.wasted_bytes) == (1.0, 0)


def test_user_percent_when_nothing_was_added_on_the_base() -> None:
    # deleting a base file adds 0 bytes: dive divides by zero (+inf)
    eff = efficiency([BASE, [wh("bin/sh")]])
    assert eff.wasted_bytes == 1000
    assert math.isinf(eff.user_wasted_percent)
    assert efficiency([BASE, [d("tmp")]]).user_wasted_percent == 0.0
