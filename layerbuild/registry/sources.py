"""Where blobs of the store were seen on registries, so a push can mount instead of upload.

A push to ``reg/team/new`` of a layer that was pulled from (or pushed to) ``reg/team/base`` asks
the registry to mount it from there (one small POST) rather than send the bytes again. docker
keeps this in its "v2 metadata" service, containerd in ``containerd.io/distribution.source.*``
content labels; layerbuild keeps one small text file per blob::

    <store root>/sources/<hex>     one "registry/repository" per line, appended

Appends of a line are atomic (O_APPEND, one write), so concurrent pulls and pushes need no lock;
duplicates are harmless and dropped when reading. A record is a hint only: the registry may have
deleted the blob since, and then answers the mount with an ordinary upload session.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path

from layerbuild.digest import Digest

_CANNOT_WRITE = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT)
_MAX_LINES = 64  # keep the most recent ones; old sources are the likeliest to be gone


class BlobSources:
    """The registry/repository pairs each blob was seen in."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory  # the store's sources_dir

    def record(self, digests: Iterable[Digest], registry: str, repository: str) -> None:
        """Note that `registry/repository` holds each of `digests`. Best effort: a record is a
        hint, so a store that cannot take it (read-only, full) loses the hint, not the push."""
        try:
            self._record(digests, f"{registry}/{repository}")
        except OSError as e:
            if e.errno not in _CANNOT_WRITE:
                raise

    def _record(self, digests: Iterable[Digest], source: str) -> None:
        line = f"{source}\n".encode()
        self.dir.mkdir(exist_ok=True)
        for digest in digests:
            path = self.dir / digest.hex
            if source in self._lines(path):
                continue
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def repositories(self, digest: Digest, registry: str) -> list[str]:
        """Repositories of `registry` that held `digest`, most recent first."""
        prefix = registry + "/"
        found = [
            s[len(prefix) :] for s in self._lines(self.dir / digest.hex) if s.startswith(prefix)
        ]
        return [r for r in reversed(found) if r][:_MAX_LINES] if found else []

    def sources(self, digest: Digest) -> list[str]:
        """Every "registry/repository" that held `digest`, most recent first."""
        return list(reversed(self._lines(self.dir / digest.hex)))[:_MAX_LINES]

    @staticmethod
    def _lines(path: Path) -> list[str]:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return []
        return list(dict.fromkeys(line for line in text.splitlines() if line))
