"""The members of an image archive read by name, never extracted: a layout or archive directory,
or a tarball (optionally gzip-compressed) with its symlinks and hard links followed inside it.

Apart from load.py, which decides what the members mean (an OCI layout or a docker-archive):
this is the boundary where a hostile archive's names and links are refused (UnsafeArchiveError),
and it knows nothing of images.
"""

from __future__ import annotations

import contextlib
import posixpath
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, cast

from layerbuild.errors import ImageFormatError, UnsafeArchiveError

_MAX_LINK_HOPS = 16


def clean_name(name: str) -> str:
    """A member name as a relative POSIX path; UnsafeArchiveError when it leaves the root."""
    cleaned = posixpath.normpath(name.replace("\\", "/")).removeprefix("./")
    if cleaned.startswith("/") or cleaned == ".." or cleaned.startswith("../"):
        raise UnsafeArchiveError(f"{name!r} points outside the archive")
    return cleaned


class ArchiveSource(Protocol):
    """Members of a layout directory or a tarball, read by name and never extracted."""

    label: str

    def has(self, name: str) -> bool: ...
    def open(self, name: str) -> BinaryIO: ...
    def read_bytes(self, name: str, limit: int) -> bytes: ...


def _read_limited(source: ArchiveSource, name: str, limit: int) -> bytes:
    with source.open(name) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ImageFormatError(f"{source.label}: {name} is larger than {limit} bytes")
    return data


class DirSource:
    """An unpacked layout or archive: files under `root`, never followed out of it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = str(root)
        self._real_root = root.resolve()

    def _path(self, name: str) -> Path:
        real = (self._real_root / clean_name(name)).resolve()
        if not real.is_relative_to(self._real_root):
            raise UnsafeArchiveError(f"{self.label}: {name} resolves outside the directory")
        return real

    def has(self, name: str) -> bool:
        return self._path(name).is_file()

    def open(self, name: str) -> BinaryIO:
        path = self._path(name)
        if not path.is_file():
            raise ImageFormatError(f"{self.label}: {name} is missing")
        return open(path, "rb")

    def read_bytes(self, name: str, limit: int) -> bytes:
        return _read_limited(self, name, limit)


class TarSource:
    """A tarball (optionally gzip-compressed) read in place; links resolved inside it."""

    def __init__(self, path: Path) -> None:
        self.label = str(path)
        try:
            self._tar = tarfile.open(path, "r:*")
        except (tarfile.TarError, EOFError) as e:
            raise ImageFormatError(
                f"{path}: not a tar archive or a gzip-compressed tar ({e})",
                hint="load takes an OCI layout directory, an OCI tarball or a docker-archive",
            ) from e
        self._members: dict[str, tarfile.TarInfo] = {}
        try:
            for info in self._tar:
                try:
                    self._members[clean_name(info.name)] = info
                except UnsafeArchiveError:
                    continue  # never looked up: nothing in a layout is named outside the root
        except (tarfile.TarError, EOFError, OSError) as e:
            self._tar.close()
            raise ImageFormatError(f"{path}: truncated or corrupt tar archive ({e})") from e

    def close(self) -> None:
        self._tar.close()

    def _resolve(self, name: str) -> tarfile.TarInfo | None:
        info = self._members.get(clean_name(name))
        for _ in range(_MAX_LINK_HOPS):
            if info is None or not (info.issym() or info.islnk()):
                return info
            link, target = info.name, info.linkname
            if info.issym():
                if target.startswith("/"):
                    raise UnsafeArchiveError(f"{self.label}: {link} links to {target}")
                target = posixpath.join(posixpath.dirname(link), target)
            try:
                info = self._members.get(clean_name(target))
            except UnsafeArchiveError as e:
                raise UnsafeArchiveError(
                    f"{self.label}: {link} links outside the archive ({target})"
                ) from e
        raise ImageFormatError(f"{self.label}: {name}: too many levels of links")

    def has(self, name: str) -> bool:
        info = self._resolve(name)
        return info is not None and info.isfile()

    def open(self, name: str) -> BinaryIO:
        info = self._resolve(name)
        f = self._tar.extractfile(info) if info is not None and info.isfile() else None
        if f is None:
            raise ImageFormatError(f"{self.label}: {name} is missing or not a regular file")
        return cast(BinaryIO, f)

    def read_bytes(self, name: str, limit: int) -> bytes:
        return _read_limited(self, name, limit)


@contextlib.contextmanager
def open_source(path: Path) -> Iterator[ArchiveSource]:
    """The members of the directory or tarball at `path`."""
    if path.is_dir():
        yield DirSource(path)
        return
    if not path.exists():
        raise ImageFormatError(f"{path}: no such file or directory")
    source = TarSource(path)
    try:
        yield source
    finally:
        source.close()
