"""The cache index: (step key, parent result) → what the step produced (a layer or nothing, and
the config).

A record links to the result it was made on: `parent` is `result_digest` of the config the step
started from (the config lists the layer chain, its diff_ids, so the digest pins the layers
too). A hit needs that exact parent: a step whose output is not reproducible, rebuilt, gives a
new parent result, and the records made on the old one are not taken for it (BuildKit links
its records to their parents' results the same way). Records of one key made on different
parents are kept beside each other, one file each: `<store>/cache/keys/<kk>/<key>.<parent>`.

Each file is written to a temp file, fsynced and renamed (the directory fsynced after), only
once the step's layer is committed to the store, so that two builds may record at once and a
killed build leaves either the whole record or none. A record is only trusted when the layer
blob it names is still in the store: gc or a prune may have removed it, and then the step
simply misses. Records of format 1 (`<kk>/<key>`, no parent link) are never looked up; they
stay listed (and prunable) until pruned.

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

from layerbuild.digest import Digest, canonical_json, sha256_bytes
from layerbuild.errors import ImageFormatError
from layerbuild.image.config import ImageConfig
from layerbuild.image.manifest import Layer
from layerbuild.plan.keys import CacheKey
from layerbuild.store.crashsafe import fsync_dir

RECORD_FORMAT = 2  # 1: no parent link (before records chained on their parents' results)
_MAX_RECORD = 64 << 20
_FILES_SUFFIX = ".files"
_BESIDE = "beside"  # the "files" of a record whose summary is in its sidecar


@dataclass(frozen=True)
class CacheRecord:
    """A cached step's result: the layer it made and the stage's config after it."""

    key: CacheKey
    layer: Layer | None
    config: ImageConfig  # the stage's config after the step
    created: float = field(default_factory=time.time)
    files: Mapping[str, str] = field(default_factory=dict)  # COPY sources: path -> summary
    description: str = ""  # the instruction as expanded, for `cache ls`
    parent: Digest | None = None  # result_digest of the config it was made on; None: format 1

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
            "format": RECORD_FORMAT,
            "parent": None if self.parent is None else str(self.parent),
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
        parent = obj.get("parent")
        linked = obj.get("format") == RECORD_FORMAT and isinstance(parent, str)
        return cls(
            key=CacheKey.from_json(obj["key"]),
            layer=layer,
            config=ImageConfig.from_json(obj["config"]),
            created=float(obj.get("created", 0)),
            files=files,
            description=str(obj.get("description") or ""),
            parent=Digest(str(parent)) if linked else None,
        )


def result_digest(config: ImageConfig) -> Digest:
    """The identity of a step's result, which the records of the next step link to: sha256 of
    the canonical JSON of its config (`ImageConfig.to_json`) without the `created` times (of
    the image and of each history entry). The config lists the layer chain (rootfs.diff_ids),
    so equal digests mean the same layers and the same config; the times differ on every run
    and say nothing about what a step ran on, so a reproducible step rebuilt keeps the records
    after it."""
    obj = config.to_json()
    obj.pop("created", None)
    for entry in obj.get("history", ()):
        entry.pop("created", None)
    return sha256_bytes(canonical_json(obj))


def link_problem(record: CacheRecord, parent: ImageConfig | None) -> str:
    """Why `record` cannot stand on the result whose config is `parent` (None: checks only
    what the record says of itself); "" when it can. Reads nothing but the record."""
    diff_ids = record.config.diff_ids
    if record.parent is None:
        return "it has no parent link (an older cache format)"
    if record.layer is not None and (not diff_ids or diff_ids[-1] != record.layer.diff_id):
        return "its config does not end with its own layer"
    if parent is None:
        return ""
    if record.parent != result_digest(parent):
        return "it was made on another parent result"
    own = () if record.layer is None else (record.layer.diff_id,)
    if diff_ids != (*parent.diff_ids, *own):
        return "its config's layers are not its parent's plus its own"
    return ""


class DamagedRecord(Exception):
    """A record file that is there but cannot be read as a record (the step runs again)."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.why = why


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


def write_cache_file(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write `path` whole or not at all (readers see the old or the new file); `durable`: also
    on disk (fsync) before and after the rename, for what must survive a crash as much as the
    blobs it names. Without it, a file lost in a crash is rebuilt, never trusted half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


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

    def path(self, digest: Digest, parent: Digest) -> Path:
        """The file of the record of key `digest` made on the result `parent`."""
        return self.keys_dir / digest.hex[:2] / f"{digest.hex}.{parent.hex}"

    def _record(self, path: Path) -> CacheRecord | None:
        try:
            return self._parse(path)
        except DamagedRecord:
            return None

    def _parse(self, path: Path) -> CacheRecord | None:
        """The record in `path`; None when there is no such file; DamagedRecord when the file
        is there but is not a whole record of the key and parent its name says."""
        try:
            with path.open("rb") as f:
                data = f.read(_MAX_RECORD)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise DamagedRecord(path, f"unreadable ({e.strerror})") from None
        try:
            obj = json.loads(data)
            beside = obj.get("files") == _BESIDE
            record = CacheRecord.from_json(obj, _Sidecar(_sidecar(path)) if beside else None)
        except (KeyError, TypeError, ValueError, AttributeError, ImageFormatError) as e:
            raise DamagedRecord(path, f"not a cache record ({e})") from None
        name = record.key.digest.hex
        if record.parent is not None:
            name += f".{record.parent.hex}"
        if path.name != name:
            raise DamagedRecord(path, "its key or parent link is not the one its name says")
        return record

    def get(self, key: CacheKey, parent: Digest) -> CacheRecord | None:
        return self.get_digest(key.digest, parent)

    def get_digest(self, digest: Digest, parent: Digest) -> CacheRecord | None:
        return self._record(self.path(digest, parent))

    def fetch(self, digest: Digest, parent: Digest) -> CacheRecord | None:
        """Like get_digest, but a damaged file raises DamagedRecord instead of missing."""
        return self._parse(self.path(digest, parent))

    def with_key(self, digest: Digest) -> list[CacheRecord]:
        """The readable records of key `digest`, whatever result each was made on."""
        folder = self.keys_dir / digest.hex[:2]
        paths = [folder / digest.hex, *folder.glob(f"{digest.hex}.*")]
        found = (self._record(p) for p in paths if not p.name.endswith(_FILES_SUFFIX))
        return [r for r in found if r is not None]

    def touch(self, path: Path) -> None:
        """Mark the record in `path` as used now (its mtime), for LRU pruning."""
        with contextlib.suppress(OSError):  # pruned meanwhile, or a read-only store: no matter
            os.utime(path)

    def put(self, record: CacheRecord) -> Path:
        """Store `record` (its parent link set) and return its file. The caller has committed
        its layer blob first: a record never names a layer that is not in the store."""
        if record.parent is None:
            raise ValueError("a cache record needs the parent result it was made on")
        path = self.path(record.key.digest, record.parent)
        obj = record.to_json()
        if obj["files"]:  # written first: a record never names a summary not yet there
            write_cache_file(_sidecar(path), json.dumps(obj["files"], sort_keys=True).encode())
            obj["files"] = _BESIDE
        write_cache_file(path, json.dumps(obj, sort_keys=True).encode(), durable=True)
        return path

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
