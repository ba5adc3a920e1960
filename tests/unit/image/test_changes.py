"""sorted_changes: its shortcut for Changes already in layer order gives what the sort gives."""

from __future__ import annotations

import random

from layerbuild.image.changes import Change, ChangeKind, sort_key, sorted_changes
from tests.support.random_layer import random_layer


def sorted_by_sort(changes: list[Change]) -> list[Change]:
    """The order without the shortcut: a copy that is never in order (reversed, a duplicate)."""
    shuffled = list(reversed(changes))
    return sorted_changes([*shuffled[:1], *shuffled])


def test_in_order_changes_come_back_as_the_sort_orders_them() -> None:
    for seed in range(20):
        ordered = sorted_by_sort(random_layer(seed))
        assert sorted_changes(ordered) == ordered
        assert sorted_changes(ordered) is not ordered  # the caller's list is not handed back


def test_a_later_change_of_the_same_path_still_replaces_the_earlier() -> None:
    first = Change("a", ChangeKind.FILE, mode=0o600)
    later = Change("a", ChangeKind.FILE, mode=0o644)
    assert sorted_changes([first, later]) == [later]


def test_out_of_order_changes_are_sorted_parents_first() -> None:
    names = ["a.b", "a/b", "a", "", "a/b/c"]
    random.Random(1).shuffle(names)
    out = sorted_changes([Change(n, ChangeKind.DIR) for n in names])
    assert [c.path for c in out] == sorted(names, key=sort_key)
    assert [c.path for c in out] == ["", "a", "a/b", "a/b/c", "a.b"]


def test_an_opaque_marker_in_order_is_kept_right_after_its_directory() -> None:
    changes = [
        Change("d", ChangeKind.DIR),
        Change("d", ChangeKind.OPAQUE),
        Change("d/f", ChangeKind.FILE),
    ]
    assert sorted_changes(changes) == changes
    assert sorted_changes(list(reversed(changes))) == changes


def test_in_order_hard_links_still_get_their_data_first() -> None:
    changes = [
        Change("a", ChangeKind.HARDLINK, link="b"),
        Change("b", ChangeKind.FILE, mode=0o755, size=3, content=None),
    ]
    out = sorted_changes(changes)
    assert [(c.path, c.kind, c.link) for c in out] == [
        ("a", ChangeKind.FILE, ""),
        ("b", ChangeKind.HARDLINK, "a"),
    ]
