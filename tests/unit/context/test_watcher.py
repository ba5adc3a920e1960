"""ContextWatcher without its socket: the listing it holds is the walkers' one, any event makes
it stale until it walks again, and a request for other rules, another root or another protocol,
or one it cannot read, is answered "stale"; and the events and answers as they travel."""

from __future__ import annotations

import marshal
import os
import struct
import time
from pathlib import Path

from layerbuild.context.inotify import IN_CREATE, IN_MODIFY, parse_events
from layerbuild.context.listing import ContextListing
from layerbuild.context.listwalk import plan_units, walk_units
from layerbuild.context.select import load_ignore
from layerbuild.context.watchclient import PROTOCOL, ask, parse_answer, request
from layerbuild.context.watcher import ContextWatcher, remote_file_system


def _context(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "d" / "e").mkdir(parents=True)
    (root / "d" / "e" / "f").write_text("f")
    (root / "x.log").write_text("log")
    (root / ".dockerignore").write_text("*.log\n")
    return root


def _answer(watcher: ContextWatcher, patterns: list[tuple[str, bool]]) -> ContextListing | None:
    shares = parse_answer(watcher.answer(request(watcher.root, patterns)))
    return None if shares is None else ContextListing.join(shares)


def test_the_listing_is_served_until_anything_changes(tmp_path: Path) -> None:
    root = _context(tmp_path)
    logged: list[str] = []
    watcher = ContextWatcher(str(root), None, logged.append)
    watcher.walk()
    rules = [("*.log", False)]
    listing = _answer(watcher, rules)
    assert listing is not None
    assert sorted(listing.paths) == ["", ".dockerignore", "d", "d/e", "d/e/f"]
    ignore = load_ignore(root, None)
    walked = walk_units(str(root), ignore, plan_units(str(root), ignore), 0, 1, 0)
    assert listing.names == ContextListing.join(walked).names
    assert listing.records == ContextListing.join(walked).records

    (root / "d" / "e" / "f").write_text("g")  # two levels down
    assert _answer(watcher, rules) is None
    watcher.walk()
    assert _answer(watcher, rules) is not None
    os.chmod(root, 0o700)  # the root itself
    assert _answer(watcher, rules) is None
    watcher.walk()
    assert _answer(watcher, []) is None  # other rules
    assert _answer(watcher, rules) is not None
    assert logged.count("answered a build: stale, it walks the context itself") == 3
    watcher.inotify.close()


def test_requests_it_cannot_vouch_for_are_stale(tmp_path: Path) -> None:
    root = _context(tmp_path)
    watcher = ContextWatcher(str(root), None, lambda _: None)
    watcher.walk()
    rules = [("*.log", False)]
    assert parse_answer(watcher.answer(b"\x00junk")) is None
    assert parse_answer(watcher.answer(marshal.dumps((PROTOCOL + 1, watcher.root, rules)))) is None
    assert parse_answer(watcher.answer(marshal.dumps((PROTOCOL, str(tmp_path), rules)))) is None
    assert parse_answer(watcher.answer(request(watcher.root, rules))) is not None
    watcher.walking = True  # walking again on its thread: no answer until it is done
    assert parse_answer(watcher.answer(request(watcher.root, rules))) is None
    watcher.inotify.close()


def test_events_and_answers_as_they_travel() -> None:
    name = b"file.txt\0\0\0\0\0\0\0\0"
    data = struct.pack("iIII", 1, IN_MODIFY, 0, len(name)) + name
    data += struct.pack("iIII", 2, IN_CREATE, 0, 0)
    assert parse_events(data) == [(1, IN_MODIFY, b"file.txt"), (2, IN_CREATE, b"")]
    assert parse_answer(marshal.dumps(("stale",))) is None
    assert parse_answer(marshal.dumps(("clean", [(1, 2, "not bytes", b"", b"")]))) is None
    assert parse_answer(b"garbage") is None
    share = (1, 1, b"", b"r", b"c")
    assert parse_answer(marshal.dumps(("clean", [share]))) == [share]


def test_no_watcher_no_answer(tmp_path: Path) -> None:
    assert ask(str(tmp_path), [], str(tmp_path / "sockets")) is None
    (tmp_path / "sockets").mkdir()
    assert ask(str(tmp_path), [], str(tmp_path / "sockets")) is None


def test_a_local_file_system_is_not_remote(tmp_path: Path) -> None:
    assert remote_file_system(str(tmp_path)) is None


def test_a_listing_of_young_entries_is_walked_again_once_they_are_older(tmp_path: Path) -> None:
    """Entries changed within the stat cache's racy margin of the walk are hashed again by
    every build that uses the listing: the watcher plans a walk for when they are older."""
    root = _context(tmp_path)
    watcher = ContextWatcher(str(root), None, lambda _: None)
    watcher.walk()
    assert watcher.rewalk_at is not None and watcher.rewalk_at > time.monotonic()
    time.sleep(2.1)
    watcher.walk()
    assert watcher.rewalk_at is None and watcher.listing is not None
    watcher.inotify.close()


def test_a_malformed_request_is_stale_and_the_watcher_goes_on(tmp_path: Path) -> None:
    root = _context(tmp_path)
    watcher = ContextWatcher(str(root), None, lambda _: None)
    watcher.walk()
    for patterns in (5, [1], [("a",)], None):
        answer = watcher.answer(marshal.dumps((PROTOCOL, watcher.root, patterns)))
        assert parse_answer(answer) is None
    assert parse_answer(watcher.answer(request(watcher.root, [("*.log", False)]))) is not None
    watcher.inotify.close()


def test_a_hard_link_changed_elsewhere_makes_the_listing_stale_until_walked(
    tmp_path: Path,
) -> None:
    root = _context(tmp_path)
    outside = tmp_path / "outside"
    os.link(root / "d" / "e" / "f", outside)
    watcher = ContextWatcher(str(root), None, lambda _: None)
    watcher.walk()
    rules = [("*.log", False)]
    assert parse_answer(watcher.answer(request(watcher.root, rules))) is not None
    outside.write_text("changed through the other link")
    assert parse_answer(watcher.answer(request(watcher.root, rules))) is None
    assert watcher.stale  # walked again by `serve` once quiet
    watcher.walk()
    assert parse_answer(watcher.answer(request(watcher.root, rules))) is not None
    watcher.inotify.close()
