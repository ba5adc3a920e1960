"""StatCache.probe in bulk (one pass over the rows of a range scan or of chunked lookups)
trusts exactly what the row-by-row rules trust: equal lstat, not racy, intact checksum."""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import time
from pathlib import Path

import pytest

from layerbuild.context.statcache import StatCache
from layerbuild.context.statcachedb import db_key, db_keys

MARGIN_NS = 50_000_000


def _files(root: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        d = root / f"d{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        f = d / f"f{i}"
        f.write_bytes(str(i).encode())
        out.append(f)
    return out


def _items(paths: list[Path]) -> list[tuple[str, os.stat_result]]:
    return [(str(p), os.lstat(p)) for p in paths]


@pytest.mark.parametrize("count", [30, 2100])  # chunked lookups; one range scan
def test_bulk_probe_trusts_what_the_row_rules_trust(tmp_path: Path, count: int) -> None:
    rng = random.Random(count)
    paths = _files(tmp_path / "ctx", count)
    cache = StatCache(tmp_path / "stat.db", racy_margin_ns=MARGIN_NS)
    time.sleep(0.1)  # out of the racy window before they are read
    cache.digests(_items(paths[: count - 5]))  # the last five never seen
    for p in paths[:3]:
        p.write_bytes(b"rewritten")
    cache.digests(_items(paths[:3]))  # recorded again, racy when probed at once
    changed = rng.sample(paths[3 : count - 5], 6)
    for p in changed[:2]:
        p.write_bytes(b"other bytes")
    os.chmod(changed[2], 0o600)
    os.utime(changed[3], ns=(0, 0))
    replacement = changed[4].with_name("new")
    replacement.write_bytes(changed[4].read_bytes())
    os.rename(replacement, changed[4])
    items = _items(paths)
    items[paths.index(changed[5])] = (
        str(changed[5]),
        os.lstat(paths[0]),  # another file's lstat is never trusted for this path
    )
    bulk, unseen = cache.probe(items)
    one_by_one = cache._probe_each(db_keys(items), items)
    assert (bulk, unseen) == one_by_one
    assert unseen == 5
    untrusted = {str(p) for p in [*paths[:3], *changed, *paths[count - 5 :]]}
    for (path, _), digest in zip(items, bulk, strict=True):
        if path in untrusted:
            assert digest is None, path
        else:
            data = Path(path).read_bytes()
            assert digest == "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_path_named_twice_is_probed_with_each_lstat(tmp_path: Path) -> None:
    paths = _files(tmp_path / "ctx", 3)
    cache = StatCache(tmp_path / "stat.db", racy_margin_ns=MARGIN_NS)
    time.sleep(0.1)
    cache.digests(_items(paths))
    old = os.lstat(paths[0])
    paths[0].write_bytes(b"changed")
    items = [(str(paths[0]), old), *_items(paths)]
    digests, unseen = cache.probe(items)
    assert digests[0] == "sha256:" + hashlib.sha256(b"0").hexdigest()  # as of that lstat
    assert digests[1] is None and None not in digests[2:] and unseen == 0


def test_a_damaged_row_in_a_range_scan_is_never_believed(tmp_path: Path) -> None:
    paths = _files(tmp_path / "ctx", 2100)
    db = tmp_path / "stat.db"
    time.sleep(0.1)
    with StatCache(db, racy_margin_ns=MARGIN_NS) as cache:
        cache.digests(_items(paths))
    with sqlite3.connect(db) as conn:
        evil = hashlib.sha256(b"evil").digest()
        conn.execute("UPDATE stat SET digest = ? WHERE path = ?", (evil, db_key(paths[50])))
    conn.close()
    notes: list[str] = []
    with StatCache(db, racy_margin_ns=MARGIN_NS, note=notes.append) as cache:
        digests, unseen = cache.probe(_items(paths))
    assert digests == [None] * len(paths) and unseen == len(paths)
    assert len(notes) == 1 and "checksum" in notes[0]


def test_db_keys_encode_as_db_key(tmp_path: Path) -> None:
    names = ["/abs/\udcff-x", "rel/é", tmp_path / "p"]
    items = [(name, None) for name in names]
    assert db_keys(items) == [db_key(name) for name in names]
