"""analyze_waste: which bytes of which layer a later layer hides (whiteout, opaque directory,
a path written again), and each layer's added/changed/deleted counts."""

from __future__ import annotations

from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.waste import HiddenBy, HiddenFile, analyze_waste

K = ChangeKind
MB = 1 << 20


def d(path: str) -> Change:
    return Change(path, K.DIR, 0o755)


def f(path: str, size: int) -> Change:
    return Change(path, K.FILE, size=size)


def wh(path: str) -> Change:
    return Change(path, K.WHITEOUT, 0)


def opq(path: str) -> Change:
    return Change(path, K.OPAQUE, 0)


BASE = [d("bin"), f("bin/sh", 1000), d("etc"), f("etc/passwd", 100)]


def test_a_file_added_then_deleted_is_wasted_in_full() -> None:
    waste = analyze_waste([BASE, [f("big", 10 * MB)], [wh("big")]])
    assert waste.hidden == (HiddenFile("big", 10 * MB, 1, 2, "big", HiddenBy.DELETED),)
    assert waste.wasted_bytes == 10 * MB
    assert [layer.wasted_bytes for layer in waste.layers] == [0, 10 * MB, 0]
    assert [layer.hides_bytes for layer in waste.layers] == [0, 0, 10 * MB]
    assert waste.content_bytes == 1100 + 10 * MB


def test_created_and_deleted_in_one_layer_wastes_nothing() -> None:
    # a RUN that creates and deletes leaves no entry at all
    waste = analyze_waste([BASE, [d("tmp")]])
    assert waste.hidden == ()
    assert waste.wasted_bytes == 0


def test_a_file_written_twice_wastes_the_first_copy() -> None:
    waste = analyze_waste([BASE, [f("etc/app.conf", 300)], [d("etc"), f("etc/app.conf", 500)]])
    assert waste.hidden == (
        HiddenFile("etc/app.conf", 300, 1, 2, "etc/app.conf", HiddenBy.REPLACED),
    )
    # the second layer changed /etc (its metadata) and /etc/app.conf; it added nothing
    assert (waste.layers[2].added, waste.layers[2].changed) == (0, 2)


def test_a_deleted_directory_wastes_everything_below_it() -> None:
    layer1 = [d("cache"), d("cache/a"), f("cache/a/x", 7), f("cache/y", 5)]
    waste = analyze_waste([BASE, layer1, [wh("cache")]])
    assert sorted((h.path, h.size, h.root) for h in waste.hidden) == [
        ("cache/a/x", 7, "cache"),
        ("cache/y", 5, "cache"),
    ]
    assert waste.layers[2].deleted == 1


def test_an_opaque_directory_hides_what_lower_layers_put_in_it() -> None:
    layer1 = [d("srv"), f("srv/old", 40), f("srv/keep", 2)]
    layer2 = [d("srv"), opq("srv"), f("srv/new", 3)]
    waste = analyze_waste([BASE, layer1, layer2])
    assert sorted((h.path, h.how) for h in waste.hidden) == [
        ("srv/keep", HiddenBy.OPAQUE),
        ("srv/old", HiddenBy.OPAQUE),
    ]
    assert waste.wasted_bytes == 42
    # the opaque marker applies first: srv/new is new, not a change of a lower srv/new
    assert (waste.layers[2].added, waste.layers[2].changed, waste.layers[2].deleted) == (1, 1, 1)


def test_a_file_over_a_directory_hides_the_directory_tree() -> None:
    layer1 = [d("data"), f("data/a", 10), f("data/b", 20)]
    waste = analyze_waste([BASE, layer1, [f("data", 1)]])
    assert sorted((h.path, h.root, h.how) for h in waste.hidden) == [
        ("data/a", "data", HiddenBy.REPLACED),
        ("data/b", "data", HiddenBy.REPLACED),
    ]


def test_waste_is_charged_to_the_layer_that_wrote_the_bytes() -> None:
    layers = [BASE, [f("a", 10)], [f("a", 20)], [wh("a")]]
    waste = analyze_waste(layers)
    assert [(h.added, h.removed, h.size) for h in waste.hidden] == [(1, 2, 10), (2, 3, 20)]
    assert [layer.wasted_bytes for layer in waste.layers] == [0, 10, 20, 0]


def test_base_files_deleted_later_are_waste_of_the_base_layer() -> None:
    waste = analyze_waste([BASE, [wh("etc/passwd")]])
    assert waste.hidden == (HiddenFile("etc/passwd", 100, 0, 1, "etc/passwd", HiddenBy.DELETED),)


def test_a_whiteout_of_a_missing_path_hides_nothing() -> None:
    waste = analyze_waste([BASE, [wh("nope"), wh("bin/nope/deeper")]])
    assert waste.hidden == ()
    assert waste.layers[1].deleted == 2


def test_counts_of_added_and_changed_entries() -> None:
    waste = analyze_waste([BASE, [d("bin"), f("bin/ls", 3), f("bin/sh", 1000), f("opt/x/y", 1)]])
    # bin and bin/sh existed; bin/ls and opt/x/y are new (their parents made implicitly)
    assert (waste.layers[1].added, waste.layers[1].changed) == (2, 2)
    assert waste.layers[0].added == 4
