"""The cache index: step key → what the step produced (a layer or nothing, and the config).

One small JSON file per key under `<store>/cache/keys/`, written to a temp file and renamed, so
that two builds may record at once and a killed build leaves either the whole record or none.
A record is only trusted when the layer blob it names is still in the store: gc or a prune may
have removed it, and then the step simply misses.

Records also keep the key's inputs (for `cache explain` and miss reasons) and, for COPY/ADD, a
per-file summary of the sources (path → content digest), so a miss can name the file that
changed. The summary lives beside its record (`<key>.files`) and is read only when asked for:
a hit needs the layer and the config, and the summary of a 20k-file COPY is 2 MB of JSON.

The last build of a given Dockerfile/target is kept under `<store>/cache/builds/` as the list
of its step records; that is what "what changed since last time" compares against.

When a record was last used is the mtime of its file: a hit touches it (one utime, no rewrite),
so `cache prune` can drop the least recently used records first. The last BuildReport of each
tagged image is kept under `<store>/cache/reports/`, for `cache compare IMAGE_A IMAGE_B`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.image.config import ImageConfig
from layerbuild.image.manifest import Layer
from layerbuild.plan.keys import CacheKey

_MAX_RECORD = 64 << 20
_FILES_SUFFIX = ".files"
_BESIDE = "beside"  # the "files" of a record whose summary is in its sidecar


@dataclass(frozen=True)
class CacheRecord:
    key: CacheKey
    layer: Layer | None
    config: ImageConfig  # the stage's config after the step
    created: float = field(default_factory=time.time)
    files: Mapping[str, str] = field(default_factory=dict)  # COPY sources: path -> summary
    description: str = ""  # the instruction as expanded, for `cache ls`

    @property
    def step_text(self) -> str:
        """What the step was: its description, else the instruction among the key's inputs."""
        return self.description or dict(self.key.inputs).get("instruction", "")

    def to_json(self) -> dict[str, Any]:
        layer = self.layer
        return {
            "key": self.key.to_json(),
            "layer": None
            if layer is None
            else {
                "diff_id": str(layer.diff_id),
                "digest": str(layer.digest),
                "size": layer.size,
                "mediaType": layer.media_type,
            },
            "config": self.config.to_json(),
            "created": self.created,
            "files": dict(self.files),
            "description": self.description,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any], files: Mapping[str, str] | None = None) -> CacheRecord:
        """The record `to_json` wrote; `files`, when given, stands for its summary."""
        if files is None:
            inline = obj.get("files")
            files = {str(k): str(v) for k, v in inline.items()} if isinstance(inline, dict) else {}
        raw = obj.get("layer")
        layer = (
            None
            if raw is None
            else Layer(
                Digest(raw["diff_id"]),
                Digest(raw["digest"]),
                int(raw["size"]),
                str(raw["mediaType"]),
            )
        )
        return cls(
            key=CacheKey.from_json(obj["key"]),
            layer=layer,
            config=ImageConfig.from_json(obj["config"]),
            created=float(obj.get("created", 0)),
            files=files,
            description=str(obj.get("description") or ""),
        )


@dataclass(frozen=True)
class CacheEntry:
    """A record as stored: its file, and when it was last used (the file's mtime)."""

    path: Path
    record: CacheRecord
    last_used: float


class _Sidecar(Mapping[str, str]):
    """A record's summary kept in `<key>.files`, read on first use; {} when it is gone."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._data: dict[str, str] | None = None

    def _load(self) -> dict[str, str]:
        if self._data is None:
            obj = _read_json(self._path)
            self._data = (
                {str(k): str(v) for k, v in obj.items()} if isinstance(obj, dict) else {}
            )
        return self._data

    def __getitem__(self, path: str) -> str:
        return self._load()[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def write_cache_file(path: Path, data: bytes) -> None:
    """Replace a cache file whole (readers see the old or the new one); not fsynced: a cache
    file lost in a crash is rebuilt, never trusted half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> Any:
    try:
        with path.open("rb") as f:
            return json.loads(f.read(_MAX_RECORD))
    except (OSError, ValueError):
        return None  # missing or damaged: a miss, never a wrong hit


class CacheIndex:
    def __init__(self, root: Path) -> None:
        self.keys_dir = root / "cache" / "keys"
        self.builds_dir = root / "cache" / "builds"
        self.reports_dir = root / "cache" / "reports"

    def _path(self, digest: Digest) -> Path:
        return self.keys_dir / digest.hex[:2] / digest.hex

    def _record(self, path: Path) -> CacheRecord | None:
        obj = _read_json(path)
        if not isinstance(obj, dict):
            return None
        beside = obj.get("files") == _BESIDE
        try:
            return CacheRecord.from_json(obj, _Sidecar(_sidecar(path)) if beside else None)
        except (KeyError, TypeError, ValueError):
            return None

    def get(self, key: CacheKey) -> CacheRecord | None:
        return self.get_digest(key.digest)

    def get_digest(self, digest: Digest) -> CacheRecord | None:
        record = self._record(self._path(digest))
        return record if record is not None and record.key.digest == digest else None

    def has(self, digest: Digest) -> bool:
        return self._path(digest).is_file()

    def touch(self, digest: Digest) -> None:
        """Mark the record of `digest` as used now (its mtime), for LRU pruning."""
        with contextlib.suppress(OSError):  # pruned meanwhile, or a read-only store: no matter
            os.utime(self._path(digest))

    def put(self, record: CacheRecord) -> None:
        path = self._path(record.key.digest)
        obj = record.to_json()
        if obj["files"]:  # written first: a record never names a summary not yet there
            write_cache_file(_sidecar(path), json.dumps(obj["files"], sort_keys=True).encode())
            obj["files"] = _BESIDE
        write_cache_file(path, json.dumps(obj, sort_keys=True).encode())

    def records(self) -> Iterator[tuple[Path, CacheRecord]]:
        if not self.keys_dir.is_dir():
            return
        for path in sorted(self.keys_dir.glob("*/*")):
            if path.name.endswith(_FILES_SUFFIX):
                continue
            record = self._record(path)
            if record is not None:
                yield path, record

    def entries(self) -> list[CacheEntry]:
        """Every readable record with its last use; damaged files are skipped."""
        out = []
        for path, record in self.records():
            try:
                last_used = path.stat().st_mtime
            except FileNotFoundError:
                continue  # removed by a concurrent prune
            out.append(CacheEntry(path, record, last_used))
        return out

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        _sidecar(path).unlink(missing_ok=True)

    # -- the previous build of the same Dockerfile and target ------------------------------------

    def _build_path(self, identity: str) -> Path:
        return self.builds_dir / sha256_bytes(identity.encode()).hex

    def last_build(self, identity: str) -> list[dict[str, Any]]:
        obj = _read_json(self._build_path(identity))
        return obj if isinstance(obj, list) else []

    def save_build(self, identity: str, steps: list[dict[str, Any]]) -> None:
        write_cache_file(self._build_path(identity), json.dumps(steps, sort_keys=True).encode())

    # -- the last build report of each tagged image ------------------------------------------

    def _report_path(self, tag: str) -> Path:
        return self.reports_dir / f"{sha256_bytes(tag.encode()).hex}.json"

    def save_report(self, tag: str, report: dict[str, Any]) -> None:
        """Keep `report` (BuildReport.to_json()) as the last build of the image `tag`."""
        data = json.dumps({"tag": tag, "report": report}, sort_keys=True).encode()
        write_cache_file(self._report_path(tag), data)

    def load_report(self, tag: str) -> dict[str, Any] | None:
        obj = _read_json(self._report_path(tag))
        if not isinstance(obj, dict) or obj.get("tag") != tag:
            return None
        report = obj.get("report")
        return report if isinstance(report, dict) else None


def _sidecar(record: Path) -> Path:
    return record.with_name(record.name + _FILES_SUFFIX)
