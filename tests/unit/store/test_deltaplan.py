"""plan_delta: which entries a delta snapshot holds (the differing ones and their parent
directories, in layer order), and the layers that need a full snapshot instead."""

from __future__ import annotations

from layerbuild.image.changes import Change, ChangeKind
from layerbuild.store.deltaplan import MAX_SHARE, plan_delta


def _dir(path: str, mode: int = 0o755) -> Change:
    return Change(path, ChangeKind.DIR, mode=mode, mtime=1)


def _file(path: str, mode: int = 0o644) -> Change:
    return Change(path, ChangeKind.FILE, mode=mode, size=1, mtime=1)


def _summaries(changes: list[Change], content: dict[str, str] | None = None) -> dict[str, str]:
    out = {}
    for c in changes:
        what = "dir" if c.kind is ChangeKind.DIR else (content or {}).get(c.path, "sha256:x")
        if c.kind is ChangeKind.HARDLINK:
            what = f"hardlink:{c.link}"
        out[c.path] = f"{what} {c.mode:04o} 0:0"
    return out


def _tree(n: int = 12) -> list[Change]:
    """ctx/ with n files in two sub directories."""
    out = [_dir("ctx"), _dir("ctx/a"), _dir("ctx/b"), _dir("ctx/b/c")]
    out += [_file(f"ctx/a/f{i}") for i in range(n // 2)]
    out += [_file(f"ctx/b/c/g{i}") for i in range(n - n // 2)]
    return sorted(out, key=lambda c: c.path)


def _paths(changes: list[Change] | None) -> list[str] | None:
    return None if changes is None else [c.path for c in changes]


def test_a_changed_file_comes_with_its_parents_in_layer_order() -> None:
    old = _tree()
    new = _summaries(old, {"ctx/b/c/g1": "sha256:y"})
    got = plan_delta(old, new, _summaries(old), touched=())
    assert _paths(got) == ["ctx", "ctx/b", "ctx/b/c", "ctx/b/c/g1"]
    assert got is not None and got[1] is old[[c.path for c in old].index("ctx/b")]


def test_nothing_changed_is_an_empty_delta() -> None:
    old = _tree()
    assert plan_delta(old, _summaries(old), _summaries(old), touched=()) == []


def test_an_added_file_and_a_new_mode_and_mtime_are_in_the_delta() -> None:
    old = _tree()
    new = sorted([*old, _file("ctx/a/new")], key=lambda c: c.path)
    summaries = _summaries(new)
    summaries["ctx/a/f0"] = summaries["ctx/a/f0"].replace("0644", "0600")
    got = plan_delta(new, summaries, _summaries(old), touched={"ctx/b/c/g2"})
    assert _paths(got) == ["ctx", "ctx/a", "ctx/a/f0", "ctx/a/new", "ctx/b", "ctx/b/c"] + [
        "ctx/b/c/g2"
    ]


def test_a_directory_replaced_by_a_file_is_a_file_in_the_delta() -> None:
    old = [*_tree(), _dir("ctx/gone"), _file("ctx/gone/x")]
    new = [c for c in old if not c.path.startswith("ctx/gone")] + [_file("ctx/gone")]
    new.sort(key=lambda c: c.path)
    got = plan_delta(new, _summaries(new), _summaries(old), touched=())
    assert _paths(got) == ["ctx", "ctx/gone"]  # hides ctx/gone/x, which the layer lacks


def test_removed_entries_need_a_full_snapshot() -> None:
    old = _tree()
    new = [c for c in old if c.path != "ctx/a/f1"]
    assert plan_delta(new, _summaries(new), _summaries(old), touched=()) is None


def test_a_file_replaced_by_a_directory_needs_a_full_snapshot() -> None:
    old = [*_tree(), _file("ctx/d")]
    new = [c for c in old if c.path != "ctx/d"] + [_dir("ctx/d")]
    assert plan_delta(new, _summaries(new), _summaries(old), touched=()) is None


def test_hard_links_need_a_full_snapshot() -> None:
    old = [*_tree(), Change("ctx/link", ChangeKind.HARDLINK, link="ctx/a/f0", mtime=1)]
    new = _summaries(old, {"ctx/a/f0": "sha256:y"})
    assert plan_delta(old, new, _summaries(old), touched=()) is None


def test_a_delta_of_too_much_of_the_layer_is_refused() -> None:
    old = _tree(40)
    files = [c.path for c in old if c.kind is ChangeKind.FILE]
    few = dict.fromkeys(files[:2], "sha256:y")
    assert plan_delta(old, _summaries(old, few), _summaries(old), touched=()) is not None
    many = dict.fromkeys(files[:len(old) // MAX_SHARE + 1], "sha256:y")
    assert plan_delta(old, _summaries(old, many), _summaries(old), touched=()) is None


def test_entries_without_a_summary_need_a_full_snapshot() -> None:
    old = _tree()
    new = [*old, Change("ctx/.wh.x", ChangeKind.WHITEOUT)]
    assert plan_delta(new, _summaries(old), _summaries(old), touched=()) is None
