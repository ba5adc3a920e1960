"""Whose fault an error is: this store's, or a cache source's or destination's.

A failed --cache-from is a miss and a failed --cache-to with ignore-error=true a warning
(registry/remotecache/), but a fault of the store itself (a full disk, a read-only file system)
is never hidden that way. The two are told apart by the paths the OSError names, since the
same errno can come from either side (a local copy of a cache directory writes both).
"""

from __future__ import annotations

import os
from pathlib import Path


def store_fault(root: Path, err: BaseException) -> OSError | None:
    """The OSError under the store `root` that `err` is or was caused by, if any: a disk
    that filled while a blob was written into the store can surface as a dropped download
    (a RegistryError caused by it), and must stay an error."""
    cause: BaseException | None = err
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and names_below(cause, root):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def names_below(err: OSError, root: Path) -> bool:
    """Whether a path `err` names (either of its two) lies in `root`."""
    top = os.path.normpath(root.absolute())
    for name in (err.filename, err.filename2):
        if isinstance(name, str | bytes):
            path = os.path.normpath(os.path.join(os.getcwd(), os.fsdecode(name)))
            if path == top or path.startswith(top.rstrip("/") + "/"):
                return True
    return False
