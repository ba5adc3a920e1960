"""StepCache (lookup, record, miss reasons) and the remote cache format, on a real store."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from layerbuild.digest import sha256_bytes
from layerbuild.engine.stepcache import StepCache, chain
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.manifest import Layer
from layerbuild.plan.keys import CacheKey, explain
from layerbuild.store import Store
from layerbuild.store.cacheindex import result_digest
from tests.support.cachesteps import layer_of, on_parent, ran

BASE = ImageConfig()


def _run_key(parent: str, env: dict[str, str]) -> CacheKey:
    return chain(parent, [("instruction", "RUN make"), ("env", json.dumps(sorted(env.items())))])


def test_lookup_hits_a_recorded_step_and_touches_it(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    cache = StepCache(store, "Dockerfile|None")
    key = chain("sha256:" + "0" * 64, [("instruction", "COPY a /a")])
    ran(cache, key, BASE, layer_of(store, b"l"))
    path = cache.index.path(key.digest, result_digest(BASE))
    os.utime(path, (1000, 1000))
    record = cache.lookup("s", key, BASE)
    assert record is not None and record.description == "COPY a /a"
    assert path.stat().st_mtime > 1000


def test_a_record_is_only_a_hit_on_the_parent_result_it_was_made_on(tmp_path: Path) -> None:
    """The same key on another result of the step before (its output not reproducible)
    misses with a reason, and its record is kept beside the first, not over it."""
    store = Store.open(tmp_path)
    cache = StepCache(store, "id")
    first = on_parent(BASE, layer_of(store, b"big 1"))
    second = on_parent(BASE, layer_of(store, b"big 2"))
    key = chain("p", [("instruction", "RUN md5sum /big > /sum")])
    ran(cache, key, first, layer_of(store, b"sum 1"))
    assert cache.lookup("s", key, second) is None
    assert "not reproducible" in cache.reason("s", 3, key)
    cache.record(key, layer_of(store, b"sum 2"), on_parent(second, layer_of(store, b"sum 2")))
    one, two = cache.lookup("s", key, first), cache.lookup("s", key, second)
    assert one is not None and two is not None
    assert (one.layer, two.layer) == (layer_of(store, b"sum 1"), layer_of(store, b"sum 2"))
    # the times in the config are not part of the result: a reproducible rebuild still hits
    later = replace(
        first, history=tuple(replace(h, created="2027-01-01T00:00:00Z") for h in first.history)
    )
    assert cache.lookup("s", key, later) is not None


def test_a_damaged_or_unfitting_record_is_dropped_with_a_warning(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    warnings: list[str] = []
    cache = StepCache(store, "id", warn=warnings.append)
    key = chain("p", [("instruction", "RUN x")])
    ran(cache, key, BASE, layer_of(store, b"x"))
    path = cache.index.path(key.digest, result_digest(BASE))
    record = json.loads(path.read_bytes())
    record["config"]["rootfs"]["diff_ids"] = [str(sha256_bytes(b"other"))]
    path.write_text(json.dumps(record))
    assert cache.lookup("s", key, BASE) is None
    assert not path.exists() and "not end with its own layer" in warnings[0]
    assert "dropped" in cache.reason("s", 2, key)
    ran(cache, key, BASE, layer_of(store, b"x"))
    path.write_bytes(b"{not json")
    assert cache.lookup("s", key, BASE) is None
    assert not path.exists() and "not a cache record" in warnings[1]


def test_a_record_whose_blob_is_gone_misses(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    cache = StepCache(store, "id")
    key = chain("p", [("instruction", "RUN x")])
    layer = layer_of(store, b"gone")
    ran(cache, key, BASE, layer)
    store.content.delete(layer.digest)
    assert cache.lookup("s", key, BASE) is None
    assert cache.reason("s", 2, key) == "no previous build of this step"  # not "reproducible"


def test_a_layer_not_in_the_store_is_never_recorded(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    cache = StepCache(store, "id")
    key = chain("p", [("instruction", "RUN x")])
    layer = Layer(sha256_bytes(b"n"), sha256_bytes(b"n"), 1, mt.OCI_LAYER)
    ran(cache, key, BASE, layer)
    assert not cache.index.with_key(key.digest)


def test_no_cache_and_no_cache_filter_never_hit(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    key = chain("p", [("instruction", "ENV A=1")])
    ran(StepCache(store, "id"), key, BASE, None)
    assert StepCache(store, "id", disabled=True).lookup("s", key, BASE) is None
    nocache = StepCache(store, "id", disabled_stages=frozenset({"s"}))
    assert nocache.lookup("s", key, BASE) is None
    other = StepCache(store, "id", disabled_stages=frozenset({"t"}))
    assert other.lookup("s", key, BASE) is not None


def test_reason_names_the_build_arg_a_run_sees(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    first = StepCache(store, "id")
    old = _run_key("p", {"VERSION": "1", "PATH": "/bin"})
    ran(first, old, BASE, None)
    first.note_step("s", 2, old, 1.0, hit=False)
    first.finish()
    second = StepCache(store, "id")
    new = _run_key("p", {"VERSION": "2", "PATH": "/bin"})
    assert second.reason("s", 2, new) == "build arg VERSION changed"
    moved = _run_key("q", {"VERSION": "1", "PATH": "/bin"})
    assert second.reason("s", 2, moved) == "parent step missed"


def test_explain_names_the_changed_file() -> None:
    old = (("parent", "p"), ("sources", "a"))
    new = (("parent", "p"), ("sources", "b"))
    files_old = {"src/app.py": "1", "src/b": "2"}
    files_new = {"src/app.py": "9", "src/b": "2"}
    assert explain(old, new, files_old=files_old, files_new=files_new) == "/src/app.py changed"


