"""The arithmetic of `layerbuild df`: shared and unique bytes, shared layers, store parts."""

from __future__ import annotations

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.store.sharing import (
    CATEGORIES,
    BlobRoles,
    BlobUse,
    ImageEntry,
    Sizes,
    category,
    combined,
    share,
    tally,
)


def _d(name: str) -> Digest:
    return sha256_bytes(name.encode())


def _layer(name: str, size: int, unpacked: int) -> BlobUse:
    return BlobUse(_d(name), Sizes(size, unpacked), layer=True)


def _meta(name: str, size: int) -> BlobUse:
    return BlobUse(_d(name), Sizes(size, size), layer=False)


BASE = _layer("base", 1000, 3000)
MID = _layer("mid", 100, 400)
A_OWN = _layer("a", 10, 20)
A = ImageEntry(_d("a"), ("a:1",), (_meta("a-m", 5), _meta("a-c", 7), BASE, MID, A_OWN))
B = ImageEntry(_d("b"), ("b:1", "b:2"), (_meta("b-m", 6), _meta("b-c", 8), BASE, MID))
BUSY = ImageEntry(_d("busy"), (), (_meta("busy-m", 4), _meta("busy-c", 3), BASE))


def test_shared_and_unique_bytes_per_image() -> None:
    usages, _ = share([A, B, BUSY])
    by = {u.digest: u for u in usages}
    assert by[A.digest].total == Sizes(1122, 3432)
    assert by[A.digest].shared == Sizes(1100, 3400)
    assert by[A.digest].unique == Sizes(22, 32)
    assert by[A.digest].layers == 3
    assert by[B.digest].unique == Sizes(14, 14)
    assert by[BUSY.digest].shared == Sizes(1000, 3000)
    assert by[BUSY.digest].names == ()


def test_shared_layers_count_their_images_biggest_first() -> None:
    _, layers = share([A, B, BUSY])
    assert [(s.digest, len(s.images)) for s in layers] == [(BASE.digest, 3), (MID.digest, 2)]
    assert layers[0].sizes == Sizes(1000, 3000)


def test_a_blob_listed_twice_in_one_image_counts_once_and_is_not_shared() -> None:
    twice = ImageEntry(_d("idx"), ("i:1",), (BASE, BASE, _meta("idx", 2)))
    usages, layers = share([twice])
    assert usages[0].total == Sizes(1002, 3002) and usages[0].shared == Sizes()
    assert usages[0].layers == 1 and layers == ()


def test_shown_images_still_share_with_the_others() -> None:
    usages, layers = share([A, B, BUSY], shown=[B.digest])
    assert [u.digest for u in usages] == [B.digest]
    assert usages[0].shared == Sizes(1100, 3400)
    assert {s.digest for s in layers} == {BASE.digest, MID.digest}
    _, none = share([A, B, BUSY], shown=[_d("nothing")])
    assert none == ()


def test_combined_counts_each_blob_once() -> None:
    assert combined([A, B]) == Sizes(5 + 7 + 6 + 8 + 1000 + 100 + 10, 5 + 7 + 6 + 8 + 3420)
    assert combined([]) == Sizes()


ROLES = BlobRoles(frozenset({"aa"}), frozenset({"aa", "cc"}))


def test_every_path_of_the_store_has_one_category() -> None:
    cases = {
        "blobs/sha256/aa": "image_blobs",
        "blobs/sha256/cc": "cache_blobs",
        "blobs/sha256/dd": "unused_blobs",
        "blobs/other": "other",
        "cache/keys/9f/9f00.11": "cache_records",
        "cache/builds/x": "cache_records",
        "cache/reports/x.json": "cache_records",
        "cache/stat.db": "stat_cache",
        "cache/stat.db-wal": "stat_cache",
        "cache/blocks.db-shm": "block_cache",
        "cache/entries/aa": "layer_indexes",
        "cache/diffsizes.json": "layer_indexes",
        "cache/mounts/id/file": "cache_mounts",
        "cache/unknown": "other",
        "cache/somedir/file": "other",
        "snapshots/abcd/bin/sh": "snapshots",
        "snapshots/tmp-1-2/bin/sh": "other",
        "snapshots/layers/abcd/etc/passwd": "layer_snapshots",
        "snapshots/layers/abcd-userns/etc/passwd": "layer_snapshots",
        "snapshots/layers/tmp-1-2/upper/x": "other",
        "index.json": "other",
        "locks/store.lock": "other",
        "ingest/x": "other",
    }
    assert {path: category(path, ROLES) for path in cases} == cases


def test_tally_sums_every_file_into_its_part() -> None:
    files = [("blobs/sha256/aa", 10), ("blobs/sha256/dd", 3), ("index.json", 2), ("x", 1)]
    totals = tally(files, ROLES)
    assert list(totals) == [key for key, _ in CATEGORIES]
    assert (totals["image_blobs"], totals["unused_blobs"], totals["other"]) == (10, 3, 3)
    assert sum(totals.values()) == 16
