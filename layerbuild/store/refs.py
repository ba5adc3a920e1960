"""Image names: the ``index.json`` of the store's OCI layout, one entry per tag.

Each entry is the manifest (or index) descriptor with two annotations: the OCI
``org.opencontainers.image.ref.name`` set to the short normalized name (``app:1``), which is what
``skopeo inspect oci:<root>:app:1`` looks up, and containerd's ``io.containerd.image.name`` with
the fully qualified name (``docker.io/library/app:1``). Entries without a ref name (written by
other tools) are kept untouched.

Updates are read-modify-write under ``refs_lock`` and replace the file atomically (temp file,
fsync, rename, fsync of the directory): a killed process leaves the old or the new index.json,
never a half-written one.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
from pathlib import Path
from typing import Any

from layerbuild.digest import Digest
from layerbuild.errors import StoreError
from layerbuild.hosterrors import at_path
from layerbuild.image import mediatypes as mt
from layerbuild.image.descriptor import Descriptor
from layerbuild.registry.reference import normalize_tag, parse_reference
from layerbuild.store.crashsafe import fsync_dir
from layerbuild.store.locking import DEFAULT_TIMEOUT, refs_lock

_NAME_KEYS = (mt.ANNOTATION_REF_NAME, mt.ANNOTATION_IMAGE_NAME)


def empty_index() -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}


def write_json_atomic(path: Path, obj: Any) -> None:
    """Replace `path` with the JSON of `obj` so that readers see the old or the new file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
    data = json.dumps(obj, indent=2, sort_keys=True).encode() + b"\n"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError as e:
            raise at_path(e, tmp) from None  # a full disk shows here: name the file
        finally:
            os.close(fd)
        os.rename(tmp, path)
    finally:
        with contextlib.suppress(OSError):  # a read-only or failing disk keeps its error
            tmp.unlink()
    fsync_dir(path.parent)


class Refs:
    """Names ("app:1", normalized by registry.reference) -> manifest descriptors."""

    def __init__(self, root: Path, *, lock_timeout: float = DEFAULT_TIMEOUT) -> None:
        self.root = root
        self.index_path = root / "index.json"
        self._lock_timeout = lock_timeout

    def _read(self) -> dict[str, Any]:
        try:
            obj = json.loads(self.index_path.read_bytes())
        except FileNotFoundError:
            return empty_index()
        except ValueError as e:
            raise StoreError(
                f"{self.index_path} is not valid JSON: {e}",
                hint="restore it from a backup, or move it away to start with no image names",
            ) from e
        if not isinstance(obj, dict) or not isinstance(obj.get("manifests", []), list):
            raise StoreError(f"{self.index_path} is not an OCI image index")
        obj.setdefault("manifests", [])
        return obj

    def _entries(self) -> list[tuple[str | None, Descriptor]]:
        out: list[tuple[str | None, Descriptor]] = []
        for raw in self._read()["manifests"]:
            desc = Descriptor.from_json(raw)
            out.append((desc.annotation(mt.ANNOTATION_REF_NAME), desc))
        return out

    def get(self, name: str) -> Descriptor | None:
        key = normalize_tag(name)
        for ref_name, desc in self._entries():
            if ref_name == key:
                return desc
        return None

    def list(self) -> dict[str, Descriptor]:
        """Every named entry, sorted by name."""
        named = {n: d for n, d in self._entries() if n is not None}
        return dict(sorted(named.items()))

    def unnamed(self) -> builtins.list[Descriptor]:
        """Entries of index.json without a ref name (e.g. written by another tool)."""
        return [d for n, d in self._entries() if n is None]

    def set(self, name: str, desc: Descriptor) -> str:
        """Point `name` at `desc` (replacing any previous target); returns the normalized name."""
        key = normalize_tag(name)
        annotations = {k: v for k, v in desc.annotations if k not in _NAME_KEYS}
        annotations[mt.ANNOTATION_REF_NAME] = key
        annotations[mt.ANNOTATION_IMAGE_NAME] = parse_reference(key).full_name
        entry = desc.with_annotations(annotations).to_json()
        self._update(key, entry)
        return key

    def delete(self, name: str) -> bool:
        """Remove a name; False when there was no such name."""
        return self._update(normalize_tag(name), None)

    def drop_unnamed(self, digest: Digest) -> bool:
        """Remove the entries without a ref name that point at `digest` (fsck --repair drops
        those whose image is gone); False when there was none."""
        with refs_lock(self.root, timeout=self._lock_timeout):
            index = self._read()
            kept = [
                m
                for m in index["manifests"]
                if (m.get("annotations") or {}).get(mt.ANNOTATION_REF_NAME) is not None
                or m.get("digest") != digest
            ]
            if len(kept) == len(index["manifests"]):
                return False
            index["manifests"] = kept
            write_json_atomic(self.index_path, index)
        return True

    def _update(self, key: str, entry: dict[str, Any] | None) -> bool:
        with refs_lock(self.root, timeout=self._lock_timeout):
            index = self._read()
            kept = [
                m
                for m in index["manifests"]
                if (m.get("annotations") or {}).get(mt.ANNOTATION_REF_NAME) != key
            ]
            found = len(kept) != len(index["manifests"])
            if entry is not None and found and len(kept) == len(index["manifests"]) - 1:
                if entry in index["manifests"]:
                    return True  # already so (a rebuild that changed nothing): no write
            if entry is not None:
                kept.append(entry)
            index["manifests"] = kept
            write_json_atomic(self.index_path, index)
        return found
