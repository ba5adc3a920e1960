"""write_snapshot: a COPY layer's snapshot from its Changes, as a delta over the previous
build's snapshot of the same step when store/deltaplan.py allows, else as a full tree
(store/materialize.py). A delta costs what changed: the entries that differ and their parent
directories are written, nothing else is copied or linked, and the RUN after the COPY walks
the previous snapshot's inodes, which the last build left warm. Which entries differ is told
by the per-path summaries and the mtimes record of the previous layer (store/layermtimes.py,
which this writes for the next one), or its snapshot's lstat when there is no record.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from layerbuild.digest import Digest
from layerbuild.image.changes import Change
from layerbuild.store import layermtimes
from layerbuild.store.deltaplan import MAX_DEPTH, plan_delta
from layerbuild.store.materialize import Previous, materialize, mtime_ns


def write_snapshot(
    changes: Sequence[Change],
    dest: Path,
    *,
    files: Mapping[str, str],
    expected: Mapping[str, Digest] | None,
    epoch: int | None,
    previous: Previous | None,
    written: dict[str, Digest] | None = None,
    cancel: threading.Event | None = None,
    record_to: Path | None = None,
) -> str | None:
    """Fill the empty directory `dest` with the snapshot of the layer of `changes` (arguments
    as `materialize`'s). Returns the diff_id hex of the layer `dest` is a delta over (commit it
    with that base: store/layers.LayerSnapshots.commit_layer), "" when `dest` holds the full
    tree, None when neither could be written (`dest` is then partly written: discard it).
    `record_to`: where to write the mtimes record of the layer (store/layermtimes.py)."""
    entries = _delta_entries(changes, files, expected, epoch, previous)
    if entries is None or previous is None:
        written_entries, base, below = changes, "", previous
    else:  # nothing unchanged is in a delta: each entry is written anew
        written_entries, base, below = entries, previous.hex, None
    ok = materialize(
        written_entries,
        dest,
        files=files,
        expected=expected,
        epoch=epoch,
        previous=below,
        written=written,
        cancel=cancel,
    )
    _record(record_to, changes, epoch, ok)
    return base if ok else None


def _record(dest: Path | None, changes: Sequence[Change], epoch: int | None, ok: bool) -> None:
    if dest is not None and ok:
        layermtimes.write(dest, changes, [mtime_ns(c, epoch) for c in changes])


def _delta_entries(
    changes: Sequence[Change],
    files: Mapping[str, str],
    expected: Mapping[str, Digest] | None,
    epoch: int | None,
    previous: Previous | None,
) -> list[Change] | None:
    """What a delta over `previous` holds, or None for a full snapshot: no previous layer,
    content not known yet (`expected` None: nothing to check the delta's files against), a
    chain of deltas already `MAX_DEPTH` deep, or what deltaplan refuses."""
    if previous is None or expected is None or not previous.hex:
        return None
    if len(previous.dirs) > MAX_DEPTH:
        return None
    known = layermtimes.load(previous.mtimes, previous.files) if previous.mtimes else None
    if known is None:
        touched = [c.path for c in changes if not _same_mtime(previous, epoch, c)]
    elif epoch is None:
        touched = [c.path for c in changes if known.get(c.path) != c.mtime * 1_000_000_000]
    else:
        touched = [c.path for c in changes if known.get(c.path) != mtime_ns(c, epoch)]
    return plan_delta(changes, files, previous.files, touched=touched)


def _same_mtime(previous: Previous, epoch: int | None, change: Change) -> bool:
    """Whether the previous snapshot's entry at `change`'s path has its mtime (an lstat)."""
    try:
        st = os.lstat(previous.locate(change.path))
    except OSError:
        return False
    return st.st_mtime_ns == mtime_ns(change, epoch)
