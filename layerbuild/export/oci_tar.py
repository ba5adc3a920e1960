"""OCI image layout as a tar stream (`oci-archive`, buildx `--output type=oci`).

The tar is deterministic: entries sorted by name (so `blobs/` comes before its files), mtime 0,
uid/gid 0 and no user or group names, so the same image always gives the same bytes. A path
destination is written to a temporary file beside it and renamed, so a failed export never
leaves a truncated archive under the requested name.
"""

from __future__ import annotations

import io
import os
import posixpath
import secrets
import tarfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from layerbuild.errors import ExportError
from layerbuild.export.oci_layout import (
    INDEX_FILE,
    LAYOUT_BYTES,
    LAYOUT_FILE,
    blob_name,
    image_blobs,
    index_entries,
)
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Index

if TYPE_CHECKING:
    from layerbuild.store.layout import Store

_FILE_MODE = 0o644
_DIR_MODE = 0o755


@dataclass(frozen=True, slots=True)
class TarMember:
    """One regular file of an archive: its name, size and how to read its bytes."""

    name: str
    size: int
    open: Callable[[], BinaryIO]


def bytes_member(name: str, data: bytes) -> TarMember:
    return TarMember(name, len(data), lambda: io.BytesIO(data))


def layout_members(store: Store, desc: Descriptor, tags: Sequence[str]) -> list[TarMember]:
    """The files of an OCI layout holding only the image `desc`, named by `tags`."""
    index = Index(tuple(index_entries(desc, tags)))
    members = [bytes_member(LAYOUT_FILE, LAYOUT_BYTES), bytes_member(INDEX_FILE, index.to_bytes())]
    for blob in image_blobs(store, desc):
        digest = blob.digest
        members.append(
            TarMember(blob_name(digest), store.content.size(digest), _opener(store, blob))
        )
    return members


def _opener(store: Store, blob: Descriptor) -> Callable[[], BinaryIO]:
    return lambda: store.content.open(blob.digest)


def write_members(members: Iterable[TarMember], out: BinaryIO) -> None:
    """Write `members` (plus their parent directories) to `out` as a deterministic tar."""
    files = {m.name: m for m in members}
    dirs = {d for name in files for d in _parents(name)}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(dirs | files.keys()):
            member = files.get(name)
            info = tarfile.TarInfo(name if member else name + "/")
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if member is None:
                info.type = tarfile.DIRTYPE
                info.mode = _DIR_MODE
                tar.addfile(info)
                continue
            info.mode = _FILE_MODE
            info.size = member.size
            with member.open() as data:
                tar.addfile(info, data)


def _parents(name: str) -> list[str]:
    out = []
    parent = posixpath.dirname(name)
    while parent:
        out.append(parent)
        parent = posixpath.dirname(parent)
    return out


def write_archive(dest: Path | BinaryIO, members: Sequence[TarMember]) -> None:
    """Write `members` as a tar to a stream, or atomically to the file `dest`."""
    if not isinstance(dest, Path):
        try:
            write_members(members, dest)
            dest.flush()
        except OSError as e:
            raise ExportError(f"cannot write the archive: {e.strerror or e}") from e
        return
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as out:
            write_members(members, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ExportError(
            f"cannot write {dest}: {e.strerror or e}",
            hint="check that the directory exists, is writable and has free space",
        ) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_oci_tar(
    store: Store, desc: Descriptor, dest: Path | BinaryIO, tags: Sequence[str]
) -> None:
    """Write the image `desc` as an OCI layout tarball to `dest` (a path, or a binary stream)."""
    write_archive(dest, layout_members(store, desc, tags))
