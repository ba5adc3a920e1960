"""Runs of spliced entries: consecutive entries the previous layer holds byte for byte, copied
from its tar as one range instead of entry by entry.

A rebuild after one file changed splices nearly every entry, and entry by entry it costs a
header read, a slice, a generator and a write each (a 100,000-file layer spent seconds there).
Here an entry the previous layer holds only extends the current run: a non-empty file when
`Splice.match` finds it (its row and content digest are the old entry's), any other entry
(directory, link, empty file, whiteout) when its header is the next bytes of the old stream,
the run being contiguous there. A run is written in one go when something else must be
written, or once it is `_RUN_BYTES` long, with where each entry starts, so that an output
that cuts its stream at entries (chunkpipe.py) cuts it exactly where the entries written one
by one would have made it cut: the blob stays byte for byte a cold pack's.

Entries written in one piece only: a file whose data the writer gives in several pieces (over
the tar writer's chunk) is copied through `Reused` as before. What follows a changed file in
the old stream is what follows it now, so the old stream's place is kept past such a file,
and the directory after it can still start a run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Protocol

from layerbuild.digest import Digest
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.tarheader import BLOCK, entry_header
from layerbuild.image.tarsplice import EntryLog, Reused, Splice

EMPTY_DIGEST = Digest("sha256:" + hashlib.sha256(b"").hexdigest())
_RUN_BYTES = 1 << 20  # a run is written once this long: bounds what is buffered
_PEEK_BYTES = 2 * _RUN_BYTES  # how far past what was consumed a header is looked for


class RunOutput(Protocol):
    def __call__(self, data: bytes, starts: list[tuple[int, int]], /) -> object:
        """Write `data`, the entries starting at each (offset in data, header length)."""


class RunSplicer:
    """Asked by the tar writer about each entry in layer order (`absorb`); what it does not
    take, the writer writes itself, with `header` or `reused` when those were found here."""

    def __init__(
        self,
        splice: Splice,
        write: Callable[[bytes], object],
        write_run: RunOutput | None,
        *,
        epoch: int | None,
        chunk: int,
        digests: dict[str, Digest] | None,
        log: EntryLog | None,
    ) -> None:
        self._splice = splice
        self._write = write
        self._write_run = write_run
        self._epoch = epoch
        self._chunk = chunk  # the writer's piece size: a file over it is several writes
        self._digests = digests
        self._log = log
        self._start = -1  # the pending run in the old stream: [start, end), none when < 0
        self._end = 0
        self._starts: list[tuple[int, int]] = []
        self._rows = (-1, -1)  # the index rows of its files, [first, last): one after another
        self._expected: int | None = 0  # where the next entry would be in the old stream
        self.header: bytes | None = None  # of the entry last refused, when it was encoded
        self.reused: Reused | None = None  # the entry last refused, to copy piece by piece

    def absorb(self, change: Change) -> bool:
        """Whether `change` went into a run; if not, the pending run is written first."""
        self.header, self.reused = None, None
        if change.kind is ChangeKind.FILE and change.size > 0:
            return self._file(change)
        header = entry_header(change, self._epoch)
        old = self._splice.old
        at = self._end if self._start >= 0 else self._expected
        if at is None or not old.position <= at <= old.position + _PEEK_BYTES:
            there = b""
        else:
            there = old.peek(at, len(header))
        if at is None or there != header or len(header) >= self._chunk // 2:
            self.flush()
            self._expected, self.header = _past(at, there, header), header
            return False
        self._extend(at, len(header), len(header))
        if change.kind is ChangeKind.FILE and self._digests is not None:
            self._digests[change.path] = EMPTY_DIGEST
        return True

    def _file(self, change: Change) -> bool:
        splice, size = self._splice, change.size
        i = splice.match(change, self._epoch)
        index = splice.index
        if i >= 0 and index.offsets[i] < (self._end if self._start >= 0 else splice.old.position):
            i = -1  # the layers order it differently: behind what a run took
        if i < 0:
            splice.written += 1
            splice.read_bytes += size
            self.flush()
            end = splice.end_of(change.path)
            self._expected = end if end is not None and end >= splice.old.position else None
            return False
        splice.spliced += 1
        header_size = index.header_sizes[i]
        total = header_size + size + (-size % BLOCK)
        if size > self._chunk or total >= self._chunk // 2:
            self.flush()  # several writes, or one the output cuts around: piece by piece
            self.reused = splice.reused(i, change)
            self._expected = splice.entry_end(i)
            return False
        first, last = self._rows
        if last != i or self._start < 0 or index.offsets[i] != self._end:
            if first >= 0 or index.offsets[i] != self._end:
                self.flush()
            first = i
        self._extend(index.offsets[i], header_size, total)
        self._rows = (first, i + 1)
        if self._end - self._start >= _RUN_BYTES:
            self.flush()
        return True

    def _extend(self, offset: int, header_size: int, total: int) -> None:
        if self._start < 0 or offset != self._end:
            self.flush()
            self._splice.old.drop(offset)  # what lies between is not in the new layer
            self._start = self._end = offset
        self._starts.append((self._end - self._start, header_size))
        self._end += total

    def flush(self) -> None:
        """Write the pending run, if any, and log its entries."""
        if self._start < 0:
            return
        data = self._splice.old.take(self._start, self._end)
        if self._write_run is not None:
            self._write_run(data, self._starts)
        else:
            self._write(data)
        log, (first, last), splice = self._log, self._rows, self._splice
        if first >= 0 and self._digests is not None:  # the run's files, in one go
            paths = splice.index.paths[first:last]
            self._digests.update(zip(paths, map(splice.known.__getitem__, paths), strict=True))
        if log is not None:
            if first >= 0:
                log.spliced_rows(splice.index, first, last, log.offset - self._start)
            log.advance(self._end - self._start)
        self._start, self._starts, self._expected = -1, [], self._end
        self._rows = (-1, -1)


def _past(at: int | None, there: bytes, header: bytes) -> int | None:
    """Where the old stream goes on after an entry without data whose header changed (a
    directory's mtime or mode): past the old bytes `there` when they are the same path's
    entry with no data (name, type and size fields alike), else not known."""
    if at is None or len(there) != len(header):
        return None
    same = there[:100] == header[:100] and there[124:136] == header[124:136]
    return at + len(header) if same and there[156] == header[156] else None
