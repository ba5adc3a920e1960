"""Progress of blob transfers, as values: pull and push emit them, the CLI renders them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from layerbuild.digest import Digest

# actions, in the order a blob meets them
EXISTS = "exists"  # already in the store (pull) or on the registry (push): not sent
CORRUPT = "corrupt"  # pull: the stored copy is damaged (`reason`): dropped, fetched again
MOUNTED = "mounted"  # push: mounted from another repository of the same registry
STARTED = "started"  # the transfer began
BYTES = "bytes"  # `done` bytes of `size` transferred so far
DONE = "done"  # transferred and verified


@dataclass(frozen=True, slots=True)
class TransferEvent:
    action: str
    digest: Digest
    size: int
    done: int = 0
    source: str | None = None  # MOUNTED: the repository it came from
    reason: str | None = None  # CORRUPT: what is wrong with the stored copy


OnProgress = Callable[[TransferEvent], None]


class ByteCounter:
    """Turns per-chunk byte counts into BYTES events; one per blob, called from one thread."""

    def __init__(self, digest: Digest, size: int, on_progress: OnProgress | None) -> None:
        self.digest, self.size, self.done = digest, size, 0
        self._on_progress = on_progress
        self._lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self._lock:
            self.done += n
            done = self.done
        if self._on_progress is not None:
            self._on_progress(TransferEvent(BYTES, self.digest, self.size, done))
