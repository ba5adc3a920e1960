"""Snapshot directory names: full and delta snapshots of both flavours, which directories a
layer's snapshot is made of, and what gc must keep for a delta (its whole chain)."""

from __future__ import annotations

from layerbuild.store import snapnames
from layerbuild.store.snapnames import (
    SnapName,
    broken,
    chain,
    index,
    needed,
    parse,
    snap_name,
)

A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)


def test_names_round_trip() -> None:
    for hex_, base, rootless in ((A, None, False), (A, B, False), (A, None, True), (A, B, True)):
        name = snap_name(hex_, base, rootless=rootless)
        assert parse(name) == SnapName(hex_, base, rootless)
    assert snap_name(A, B, rootless=True) == f"{A}-on-{B}-userns"


def test_other_names_are_not_snapshots() -> None:
    assert parse(f"{A}-rootless") is None  # older stores' rootless snapshots lack owners
    assert parse("tmp-123-abcdef") is None
    assert parse(f"{A}-on-") is None
    assert parse(A.upper()) is None


def test_a_full_snapshot_wins_over_a_delta_of_the_same_layer() -> None:
    snaps = index([f"{A}-on-{B}", A, B])
    assert chain(snaps, A, rootless=False) == [A]
    assert chain(index([f"{A}-on-{B}", B]), A, rootless=False) == [f"{A}-on-{B}", B]


def test_a_chain_goes_down_to_a_full_snapshot_of_its_own_flavour() -> None:
    names = [f"{A}-on-{B}", f"{B}-on-{C}", C, f"{A}-on-{B}-userns", f"{B}-userns"]
    snaps = index(names)
    assert chain(snaps, A, rootless=False) == [f"{A}-on-{B}", f"{B}-on-{C}", C]
    assert chain(snaps, A, rootless=True) == [f"{A}-on-{B}-userns", f"{B}-userns"]
    assert chain(snaps, C, rootless=True) is None


def test_a_delta_whose_base_is_gone_is_no_snapshot() -> None:
    assert chain(index([f"{A}-on-{B}", f"{B}-on-{C}"]), A, rootless=False) is None


def test_a_cycle_is_no_snapshot() -> None:
    assert chain(index([f"{A}-on-{B}", f"{B}-on-{A}"]), A, rootless=False) is None
    assert snapnames.MAX_CHAIN > 8


def test_gc_keeps_the_chain_below_a_kept_delta() -> None:
    names = [f"{A}-on-{B}", f"{B}-on-{C}", C, D, f"{D}-userns", f"{A}-rootless"]
    assert needed(names, {A}) == {f"{A}-on-{B}", f"{B}-on-{C}", C}
    assert needed(names, {D}) == {D, f"{D}-userns"}
    assert needed(names, {B}) == {f"{B}-on-{C}", C}
    assert needed(names, set()) == set()


def test_deltas_whose_chain_is_broken() -> None:
    names = [f"{A}-on-{B}", f"{B}-on-{C}", f"{D}-on-{C}-userns", C]
    assert broken(names) == [f"{D}-on-{C}-userns"]
    assert broken([*names[:2]]) == [f"{A}-on-{B}", f"{B}-on-{C}"]
