"""deltaplan: which entries a delta snapshot of a layer holds, or why it cannot have one.

A COPY layer spliced from the previous build's (one file changed among 100,000) gets its
overlay lower as a *delta* (store/snapnames.py): the entries that differ from the previous
layer, with their parent directories, stacked right above the previous layer's snapshot. For
any lower layers under both, that stack must show exactly the tree the layer alone would,
which holds when each differing entry is one overlayfs resolves in the delta alone:

- a file, symlink or directory whose content, mode, owner, xattrs or mtime changed, or that is
  new: the delta's entry wins; a directory merges with the layers below as the layer's would,
  and takes its attributes from the delta, the top-most layer that has it;
- a directory replaced by a file: the delta's file hides the old directory and all it held,
  as the layer's file hides whatever lies below.

It does not hold when something of the previous layer must disappear without the layer itself
hiding it: a removed entry (a whiteout would also hide what the layers below have there, which
the new layer does not) or a file replaced by a directory (overlayfs stops at the old file and
would not merge the layers below). A layer with hard links is left alone too (one name could
land in the delta and another stay below it, no longer one file). Those, and deltas that
would hold more than 1/`MAX_SHARE` of the entries, get a full snapshot.

Pure: entries come in as Changes, summaries (context/hashing.py) and the paths whose mtime
is not the previous layer's (store/deltasnap.py finds those).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from layerbuild.image.changes import Change

MAX_SHARE = 4  # a delta of more than 1/MAX_SHARE of the entries is no cheaper than a copy
MAX_DEPTH = 8  # deltas above one full snapshot: each is one more overlay lower per RUN
_LINK = "hardlink:"
_DIR = "dir "


def plan_delta(
    changes: Sequence[Change],
    files: Mapping[str, str],
    previous: Mapping[str, str],
    *,
    touched: Collection[str],
) -> list[Change] | None:
    """The Changes a delta snapshot holds (layer order: parents first), or None when the
    layer needs a full one (see the module docstring). `files`, `previous`: the per-path
    summaries of the layer (one per Change) and of the layer below the delta; `touched`: the
    paths whose (clamped) mtime is not the one the previous layer has.

    No Python call per entry: at 100,000 entries this is a few passes of comprehensions."""
    if len(files) != len(changes):
        return None
    differ = [p for p, s in files.items() if previous.get(p) != s]
    wanted = {*differ, *touched}
    if len(wanted) * MAX_SHARE > len(changes):
        return None
    added = sum(1 for p in differ if p not in previous)
    if len(files) - added != len(previous) and not _all_hidden(previous, files):
        return None  # an entry was removed
    for path in differ:
        old = previous.get(path)
        if old is not None and files[path].startswith(_DIR) and not old.startswith(_DIR):
            return None  # a file replaced by a directory
    if wanted and (_has_links(files) or _has_links(previous)):
        return None  # a link and its target could end up in different directories
    for path in list(wanted):
        parent = path.rpartition("/")[0]
        while parent and parent not in wanted:
            if not files.get(parent, "").startswith(_DIR):
                return None  # a parent that is not a directory of this layer
            wanted.add(parent)
            parent = parent.rpartition("/")[0]
    return [c for c in changes if c.path in wanted]


def _all_hidden(previous: Mapping[str, str], files: Mapping[str, str]) -> bool:
    """Whether each entry of `previous` that `files` lacks lies under a path that `files` has
    as something other than a directory (a directory replaced by a file: the file hides it)."""
    for path in previous:
        if path in files:
            continue
        parent = path.rpartition("/")[0]
        while parent and parent not in files:
            parent = parent.rpartition("/")[0]
        if not parent or files[parent].startswith(_DIR):
            return False
    return True


def _has_links(summaries: Mapping[str, str]) -> bool:
    return any(s.startswith(_LINK) for s in summaries.values())
