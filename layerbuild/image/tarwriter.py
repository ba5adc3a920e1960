"""Changes → a deterministic layer tar, byte for byte what BuildKit's layers look like.

BuildKit writes layers with containerd's ``archive.ChangeWriter`` on top of Go's
``archive/tar``. We reproduce the header choices of that pair, so that the same changes give
the same diff_id here, on any machine, and (for the same metadata) in BuildKit:

- Go's writer picks USTAR whenever the header fits it (names up to 100 bytes, or up to 256 when
  they split at a '/' into the 155-byte prefix field; ASCII only; numbers that fit the octal
  fields) and PAX otherwise, with the PAX records sorted by key and the extended header named
  ``<dir>/PaxHeaders.0/<base>``.
- No user/group names, no atime/ctime, whole-second mtimes (clamped to SOURCE_DATE_EPOCH when
  set), directories named with a trailing '/', permission bits only in the mode field.
- A hard link's first occurrence is a regular file with the data; later ones are type '1'
  entries with no data, whichever name the Change producer gave the data (``sorted_changes``
  moves it to the first name in layer order).
- Whiteouts and opaque markers are empty regular files with every field zero: containerd stamps
  whiteouts with time.Now() unless told otherwise, which would make layers irreproducible.
- The archive ends with two zero blocks and no padding to a 10 KiB record (``tar.Writer.Close``).

Only xattrs the Change carries are written (as ``SCHILY.xattr.<name>`` PAX records): the change
producers decide which to keep (containerd keeps only ``security.capability``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import BinaryIO, Protocol

from layerbuild.digest import Digest
from layerbuild.errors import LayerContentError
from layerbuild.image.changes import Change, ChangeKind, sorted_changes
from layerbuild.image.splicerun import EMPTY_DIGEST, RunOutput, RunSplicer
from layerbuild.image.tarheader import BLOCK, entry_header, padding
from layerbuild.image.tarsplice import EntryLog, Reused, Splice

CHUNK = 1 << 20  # file data is copied in 1 MiB reads
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)


class Writable(Protocol):
    """What the writer needs of its output: a binary file, a socket wrapper, a hashing pipe."""

    def write(self, data: bytes, /) -> object: ...


def write_tar(
    changes: Iterable[Change],
    out: Writable,
    *,
    source_date_epoch: int | None = None,
    digests: dict[str, Digest] | None = None,
    known: Mapping[str, Digest] | None = None,
    splice: Splice | None = None,
    log: EntryLog | None = None,
) -> None:
    """Write ``changes`` as a layer tar to ``out``, in ``sorted_changes`` order.

    The output depends only on the changes (and the epoch), never on their input order, the
    machine or the time. Raises LayerContentError when a file's opener yields more or fewer
    bytes than its ``size`` (the file changed while it was being packed). With ``digests``,
    the sha256 of every file's content is recorded there by path as it is written: a cold
    COPY gets its cache key from the same single read that packs it. A file whose digest is
    `known` (the stat cache vouched for it) is not hashed again: it is read with its lstat
    checked after the read instead (``FileSource.chunks(settled=True)``), and given that digest.
    With ``splice``, a file entry the previous layer holds byte for byte is copied from there
    (tarsplice.py); ``log`` learns where each entry lies, for a later pack to splice from.
    """
    write = out.write
    # an output that cuts its stream into blocks may cut where an entry starts (chunkpipe.py)
    entry_start: Callable[[bytes], object] | None = getattr(out, "entry_start", None)
    runs = None
    if splice is not None:
        write_run: RunOutput | None = getattr(out, "write_run", None)
        runs = RunSplicer(
            splice,
            write,
            write_run,
            epoch=source_date_epoch,
            chunk=CHUNK,
            digests=digests,
            log=log,
        )
    try:
        for change in sorted_changes(changes):
            reused, header = None, None
            if runs is not None:
                if runs.absorb(change):
                    continue
                reused, header = runs.reused, runs.header
            if reused is not None:
                header = reused.header
            elif header is None:
                header = entry_header(change, source_date_epoch)
            if entry_start is not None:
                entry_start(header)
            _write_entry(change, header, write, digests, known, reused)
            if log is not None and reused is not None:
                log.spliced(change.path, reused)
            elif log is not None:
                digest = digests.get(change.path) if digests is not None else None
                log.entry(change, header, digest, source_date_epoch)
        if runs is not None:
            runs.flush()
        write(END_OF_ARCHIVE)
        if splice is not None:
            splice.finish()
    finally:
        if splice is not None:
            splice.close()


def _write_entry(
    change: Change,
    header: bytes,
    write: Callable[[bytes], object],
    digests: dict[str, Digest] | None,
    known: Mapping[str, Digest] | None,
    reused: Reused | None,
) -> None:
    if change.kind is not ChangeKind.FILE:
        write(header)
    elif change.size > 0:
        _write_content(change, header, write, digests, known, reused)
    else:
        write(header)
        if digests is not None:
            digests[change.path] = EMPTY_DIGEST


def _write_content(
    change: Change,
    header: bytes,
    write: Callable[[bytes], object],
    digests: dict[str, Digest] | None,
    known: Mapping[str, Digest] | None = None,
    reused: Reused | None = None,
) -> None:
    """The header, the data and its padding; a small file goes out as one write. `reused`:
    the entry comes from a previous layer (tarsplice.py), its data in the same pieces."""
    content = change.content
    if content is None:
        raise LayerContentError(
            f"{change.path}: a file of {change.size} bytes has no content to read",
            hint="this is a bug in the step that produced the file; please report it",
        )
    chunks: Callable[..., Iterable[bytes]] | None = getattr(content, "chunks", None)
    trusted = known.get(change.path) if known is not None and chunks is not None else None
    if reused is not None:
        chunks, trusted = reused.chunks, reused.digest
    h = hashlib.sha256() if digests is not None and trusted is None else None
    try:
        if chunks is None:
            write(header)
            got = _copy_opened(content, change.size, write, h)
        else:  # a FileSource: no file object, and a small file leaves as one write
            got = 0
            pad = padding(change.size)
            for chunk in chunks(CHUNK, settled=trusted is not None):
                got += len(chunk)
                if h is not None:
                    h.update(chunk)
                if header:
                    if got == change.size:
                        chunk, pad = header + chunk + pad, b""
                    else:
                        write(header)
                    header = b""
                write(chunk)
            if pad:
                write(pad)
    except OSError as e:
        raise LayerContentError(
            f"{change.path}: cannot read file content while writing the layer: {e}",
            hint="check that the file still exists and is readable, then build again",
        ) from e
    if got != change.size:
        got_text = "more" if got > change.size else f"{got}"
        raise LayerContentError(
            f"{change.path}: expected {change.size} bytes but read {got_text}; the file changed "
            "while the layer was being written",
            hint="make sure nothing modifies the build context or image during the build",
        )
    if digests is not None and trusted is not None:
        digests[change.path] = trusted
    elif digests is not None and h is not None:
        digests[change.path] = Digest.from_hash(h)


def _copy_opened(
    content: Callable[[], BinaryIO],
    size: int,
    write: Callable[[bytes], object],
    h: hashlib._Hash | None,
) -> int:
    """Copy an opened file's data and padding; the count read (size + 1 when it grew)."""
    remaining = size
    with content() as src:
        while remaining > 0:
            chunk = src.read(min(CHUNK, remaining))
            if not chunk:
                break
            write(chunk)
            if h is not None:
                h.update(chunk)
            remaining -= len(chunk)
        if remaining == 0 and src.read(1):
            return size + 1
    if remaining == 0:
        write(padding(size))
    return size - remaining
