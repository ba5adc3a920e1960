"""Uncompressed layer sizes: counted once per blob, whatever the compression, then read back."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import zstandard

from layerbuild.store import Store
from layerbuild.store.diffsizes import diff_sizes, memo_path

TAR = b"x" * 100_000 + bytes(range(256)) * 50


def test_sizes_of_gzip_zstd_plain_and_multi_member_blobs(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    gz = store.content.put_bytes(gzip.compress(TAR))
    zst = store.content.put_bytes(zstandard.ZstdCompressor(write_content_size=False).compress(TAR))
    plain = store.content.put_bytes(TAR)
    # two members, as parallel gzip writers emit: the trailer alone would say 3 bytes
    multi = store.content.put_bytes(gzip.compress(TAR) + gzip.compress(b"end"))
    sizes = diff_sizes(store, [gz, zst, plain, multi])
    assert sizes == {gz: len(TAR), zst: len(TAR), plain: len(TAR), multi: len(TAR) + 3}


def test_sizes_are_remembered_and_missing_blobs_left_out(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    gz = store.content.put_bytes(gzip.compress(TAR))
    gone = store.content.put_bytes(gzip.compress(b"gone"))
    assert diff_sizes(store, [gz, gone]) == {gz: len(TAR), gone: 4}
    store.content.delete(gone)
    stored = json.loads(memo_path(tmp_path).read_bytes())
    assert stored["sizes"][str(gz)] == len(TAR)
    # the memo is what answers now: a changed number in it is returned as it is
    stored["sizes"][str(gz)] = 7
    memo_path(tmp_path).write_text(json.dumps(stored))
    assert diff_sizes(store, [gz, gone]) == {gz: 7}


def test_a_damaged_memo_is_rebuilt(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    gz = store.content.put_bytes(gzip.compress(TAR))
    memo_path(tmp_path).write_text("{not json")
    assert diff_sizes(store, [gz]) == {gz: len(TAR)}
    assert json.loads(memo_path(tmp_path).read_bytes())["sizes"] == {str(gz): len(TAR)}


def test_a_blob_that_does_not_decompress_counts_as_stored(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    truncated = store.content.put_bytes(gzip.compress(TAR)[:200])
    assert diff_sizes(store, [truncated]) == {truncated: 200}
