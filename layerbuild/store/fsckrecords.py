"""Stage 4 of `layerbuild fsck` (store/fsck.py has the order and why): the build cache's
records parse, are filed under their own key, and their layers can serve."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layerbuild.digest import Digest
from layerbuild.image import mediatypes as mt
from layerbuild.plan.keys import CacheKey
from layerbuild.store.cacheindex import CacheRecord, link_problem
from layerbuild.store.fsckimages import part_problem
from layerbuild.store.fsckproblem import (
    DROP_RECORD,
    REMOVE_PATH,
    Problem,
)
from layerbuild.store.leftovers import CACHE_TEMP_PREFIX

if TYPE_CHECKING:
    from layerbuild.store.layout import Store


FILES_SUFFIX = ".files"  # a record's file summary beside it (cacheindex.py)


# -- 4. cache records ------------------------------------------------------------------------


def check_record(
    record: CacheRecord, path: Path, store: Store, doomed: frozenset[Digest]
) -> list[Problem]:
    """What is wrong with one parsed cache record (stored at `path`): every check of a
    record's fields is here, so a new field's check has one place to go."""
    where = str(path.relative_to(store.root))

    def problem(what: str) -> Problem:
        return Problem("broken cache record", where, what, DROP_RECORD, str(path))

    digest = record.key.digest
    if record.parent is None:
        what = "a record of an older cache format (no parent link): never used again"
        return [Problem("stale cache record", where, what, DROP_RECORD, str(path))]
    if path.name != f"{digest.hex}.{record.parent.hex}" or path.parent.name != digest.hex[:2]:
        return [problem(f"its file name does not say its key and parent ({digest})")]
    if CacheKey.of(record.key.inputs).digest != digest:
        return [problem("its key is not the digest of its inputs")]
    if why := link_problem(record, None):
        return [problem(why)]
    layer = record.layer
    if layer is None:
        return []
    if layer.media_type not in mt.LAYERS:
        return [problem(f"its layer has media type {layer.media_type}")]
    if why := part_problem(store, layer.descriptor, "layer", doomed, says="record"):
        return [problem(why.removeprefix("its "))]
    if not record.config.diff_ids or record.config.diff_ids[-1] != layer.diff_id:
        return [problem(f"its config does not end with its layer's diff_id {layer.diff_id}")]
    return []


def _read_record(path: Path) -> tuple[CacheRecord | None, str]:
    """The record in `path`, or None and why it cannot be read."""
    try:
        obj: Any = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        return None, f"not a JSON record ({e})"
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    if obj.get("files") == "beside":  # the summary is in the sidecar (cacheindex.py)
        sidecar = path.with_name(path.name + FILES_SUFFIX)
        try:
            summary = json.loads(sidecar.read_bytes())
        except (OSError, ValueError):
            return None, f"its file summary {sidecar.name} is missing or not JSON"
        if not isinstance(summary, dict):
            return None, f"its file summary {sidecar.name} is not a JSON object"
        obj = {**obj, "files": {}}
    try:
        return CacheRecord.from_json(obj), ""
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        return None, f"not a cache record ({type(e).__name__}: {e})"


def _record_files(store: Store) -> Iterator[Path]:
    keys = store.root / "cache" / "keys"
    if keys.is_dir():
        for path in sorted(keys.glob("*/*")):
            if not path.name.startswith(CACHE_TEMP_PREFIX):
                yield path


def check_records(store: Store, doomed: frozenset[Digest]) -> list[Problem]:
    """Cache records that cannot be read, or whose layer cannot serve (`check_record`), and
    file summaries whose record is gone."""
    problems: list[Problem] = []
    for path in _record_files(store):
        where = str(path.relative_to(store.root))
        if path.name.endswith(FILES_SUFFIX):
            if not path.with_name(path.name.removesuffix(FILES_SUFFIX)).exists():
                what = "file summary of a record that is not there"
                problems.append(Problem("orphan file", where, what, REMOVE_PATH, str(path)))
            continue
        record, why = _read_record(path)
        if record is None and not path.exists():
            continue  # removed meanwhile (a `cache prune` beside the check): not damage
        if record is None:
            problems.append(Problem("broken cache record", where, why, DROP_RECORD, str(path)))
        else:
            problems.extend(check_record(record, path, store, doomed))
    return problems
