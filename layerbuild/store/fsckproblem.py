"""What `layerbuild fsck` finds (store/fsck.py): a `Problem`, and what repair does about it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from layerbuild.digest import Digest

# What repair does about a problem (Problem.action), and how the report says it
REMOVE_BLOB = "remove-blob"
REMOVE_PATH = "remove-path"
DROP_RECORD = "drop-record"
UNTAG = "untag"
DROP_ENTRY = "drop-entry"
NOTHING = ""
_SAYS = {
    REMOVE_BLOB: ("remove the blob", "removed the blob"),
    REMOVE_PATH: ("remove it", "removed it"),
    DROP_RECORD: ("drop the record", "dropped the record"),
    UNTAG: ("remove the name", "removed the name"),
    DROP_ENTRY: ("remove the entry from index.json", "removed the entry from index.json"),
}
REPAIR_ORDER = (UNTAG, DROP_ENTRY, DROP_RECORD, REMOVE_BLOB, REMOVE_PATH)  # names go before blobs


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the store: what kind, where (relative to the root), what exactly,
    and what repair does about it (`action` on `target`; NOTHING when repair cannot help)."""

    kind: str
    where: str
    what: str
    action: str
    target: str

    def line(self, *, repaired: bool = False) -> str:
        if self.action == NOTHING:
            return f"{self.kind}: {self.where}: {self.what} (--repair cannot fix this)"
        would, did = _SAYS[self.action]
        if repaired:
            return f"repaired {self.kind}: {self.where}: {self.what} ({did})"
        return f"{self.kind}: {self.where}: {self.what} (--repair would {would})"


def blob_where(digest: Digest) -> str:
    return f"blobs/sha256/{digest.hex}"


def corrupt_blob(digest: Digest, actual: str) -> Problem:
    what = f"content hashes to {actual}, not to its name"
    return Problem("corrupt blob", blob_where(digest), what, REMOVE_BLOB, str(digest))


def doomed_digests(problems: Iterable[Problem]) -> frozenset[Digest]:
    return frozenset(Digest(p.target) for p in problems if p.action == REMOVE_BLOB)
