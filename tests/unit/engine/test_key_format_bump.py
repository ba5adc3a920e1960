"""A bumped KEY_FORMAT (layerbuild/plan/keys.py) leaves every record of the old keys unused:
the format is an input of every step key (engine/stepcache.chain), so the same step keys anew
and misses, on a real store, and its old record is not found under the new key."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.engine import stepcache
from layerbuild.engine.stepcache import StepCache, chain
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import History, ImageConfig
from layerbuild.image.manifest import Layer
from layerbuild.plan.keys import KEY_FORMAT
from layerbuild.store import Store

PARENT = "sha256:" + "1" * 64
STEP = [("instruction", "COPY app /app"), ("from", "context"), ("sources", "sha256:" + "2" * 64)]


def _record(store: Store, cache: StepCache) -> None:
    data = b"layer of COPY app /app"
    layer = Layer(sha256_bytes(data), store.content.put_bytes(data), len(data), mt.OCI_LAYER)
    key = chain(PARENT, STEP)
    assert cache.lookup("s", key, ImageConfig()) is None
    config = ImageConfig().with_layer(layer.diff_id, History(created_by="COPY app /app"))
    cache.record(key, layer, config)


def test_a_record_of_the_current_format_hits(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    _record(store, StepCache(store, "Dockerfile|None"))
    assert StepCache(store, "Dockerfile|None").lookup("s", chain(PARENT, STEP), ImageConfig())


def test_a_record_made_under_an_older_key_format_is_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(tmp_path)
    _record(store, StepCache(store, "Dockerfile|None"))
    old = chain(PARENT, STEP)
    monkeypatch.setattr(stepcache, "KEY_FORMAT", str(int(KEY_FORMAT) + 1))
    new = chain(PARENT, STEP)
    assert new.digest != old.digest
    assert dict(new.inputs)["format"] == str(int(KEY_FORMAT) + 1)
    cache = StepCache(store, "Dockerfile|None")
    assert cache.lookup("s", new, ImageConfig()) is None
    assert cache.index.with_key(old.digest) and not cache.index.with_key(new.digest)
