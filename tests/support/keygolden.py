"""Golden cache keys: what a build keyed, read back, and compared with tests/golden/keys/.

Name: base_layout, write_context, build_keys, compare, KeyGolden.
Scope: tests/integration/test_key_golden.py and the unit test of the comparison.
Depends: the standard library; the CLI (tests/support/cli.py) for builds. The base image and
       the contexts are made here with tarfile/json only, byte for byte the same on every
       machine, so a key that differs is a key that changed.

A golden file is pretty JSON: the key format (`layerbuild/plan/keys.py` KEY_FORMAT) and, per
step, its stage, index, instruction, key digest and the named inputs the key was made of, as
the key function saw them. Changing any of them is changing every user's cache: it must come
with a KEY_FORMAT bump (so records of the old keys are never reused) and a reviewed diff of
the golden files, which `UPDATE_GOLDEN=1` rewrites.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.cli import REPO, Layerbuild

GOLDEN = REPO / "tests" / "golden" / "keys"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
REGENERATE = (
    "UPDATE_GOLDEN=1 python3 -m pytest tests/integration/test_key_golden.py "
    "(as root, for the RUN case), then review the diff of tests/golden/keys/"
)
BASE_TAG = "keybase:1"
PASSWD = "root:x:0:0:root:/root:/shell/sh\napp:x:1000:1000:app:/home/app:/shell/sh\n"
GROUP = "root:x:0:\napp:x:1000:\n"
BASE_DIRS = ("dev", "etc", "home", "home/app", "proc", "root", "sys", "tmp")


def key_format() -> str:
    """KEY_FORMAT as the source file spells it (read, not imported: the CLI under test runs
    in a subprocess, and this module stays free of layerbuild imports)."""
    text = (REPO / "layerbuild" / "plan" / "keys.py").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("KEY_FORMAT ="):
            return str(json.loads(line.split("=", 1)[1].strip()))
    raise AssertionError("layerbuild/plan/keys.py has no KEY_FORMAT line")


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _put_blob(layout: Path, data: bytes) -> str:
    hexd = hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / hexd
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return "sha256:" + hexd


def _base_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in BASE_DIRS:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
            info.uid = info.gid = 1000 if name == "home/app" else 0
            tar.addfile(info)
        for name, text in (("etc/group", GROUP), ("etc/passwd", PASSWD)):
            raw = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(raw), 0o644
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def input_digest(inputs: list[list[str]]) -> str:
    """A key's digest from its inputs, as layerbuild/plan/keys.py makes it (written anew here
    so that the golden files are checked against the rule, not against the code)."""
    return "sha256:" + hashlib.sha256(_canonical(inputs)).hexdigest()


def base_layout(out: Path) -> Path:
    """An OCI layout of a tiny base image (passwd, group, empty dirs; an uncompressed layer, so
    no compressor's version can move its digest), tagged `latest`: its manifest digest, the
    input `base` of every stage root key below, is the same on every machine."""
    tar = _base_tar()
    out.mkdir(parents=True)
    (out / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]},
        "history": [{"created_by": "tests/support/keygolden.py"}],
    }
    cfg = _canonical(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _put_blob(out, cfg),
            "size": len(cfg),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": _put_blob(out, tar),
                "size": len(tar),
            }
        ],
    }
    man = _canonical(manifest)
    entry = {
        "mediaType": manifest["mediaType"],
        "digest": _put_blob(out, man),
        "size": len(man),
        "annotations": {"org.opencontainers.image.ref.name": "latest"},
    }
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
    (out / "index.json").write_bytes(_canonical({**index, "manifests": [entry]}))
    return out


def write_context(root: Path, files: dict[str, tuple[bytes, int]], mtime: int) -> Path:
    """`files` (path -> (content, mode)) under `root` (directories 0755), every entry's mtime
    set to `mtime` (the goldens build twice with different mtimes: a key must not see them)."""
    for rel, (data, mode) in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    for path in [*sorted(root.rglob("*"), reverse=True), root]:
        if path.is_dir():
            path.chmod(0o755)  # not what the umask left: a directory's mode is in the key
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    return root


def tar_bytes(members: dict[str, bytes]) -> bytes:
    """A plain tar of regular files (mode 0644, root-owned, mtime 0), for ADD to unpack."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_keys(
    lb: Layerbuild, context: Path, *args: str, env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Build `context` and return each step's key and inputs: the digests from `--report`, the
    inputs from the store's record of this build (cache/builds/, what miss reasons compare)."""
    steps = lb.report_steps(context, *args, env=env)
    keys = [s["key"] for s in steps]
    for path in sorted((lb.store / "cache" / "builds").iterdir()):
        noted = json.loads(path.read_text(encoding="utf-8"))
        if [s.get("key") for s in noted] == keys:
            return [
                {
                    "stage": s["stage"],
                    "index": s["index"],
                    "instruction": s["instruction"],
                    "key": s["key"],
                    "inputs": n["inputs"],
                }
                for s, n in zip(steps, noted, strict=True)
            ]
    raise AssertionError(f"no record of the build of {context} under {lb.store}/cache/builds")


@dataclass(frozen=True)
class KeyGolden:
    """One golden file: the key format it was made under and the steps' keys and inputs."""

    key_format: str
    steps: list[dict[str, Any]]

    def text(self) -> str:
        """Pretty JSON with one input pair a line, so a diff names the input that moved."""
        steps = ",\n".join(_step_text(step) for step in self.steps)
        head = json.dumps(self.key_format)
        return f'{{\n  "key_format": {head},\n  "steps": [\n{steps}\n  ]\n}}\n'

    @classmethod
    def read(cls, path: Path) -> KeyGolden:
        obj = json.loads(path.read_text(encoding="utf-8"))
        return cls(str(obj["key_format"]), list(obj["steps"]))


def _step_text(step: dict[str, Any]) -> str:
    fields = [
        f"      {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
        for k, v in step.items()
        if k != "inputs"
    ]
    pairs = ",\n".join(
        f"        {json.dumps(pair, ensure_ascii=False)}" for pair in step.get("inputs", [])
    )
    fields.append(f'      "inputs": [\n{pairs}\n      ]')
    return "    {\n" + ",\n".join(fields) + "\n    }"


def compare(expected: KeyGolden, actual: KeyGolden, name: str) -> str | None:
    """None when `actual` is `expected`; else what failed, what to do, and the diff."""
    if expected == actual:
        return None
    diff = "".join(
        difflib.unified_diff(
            expected.text().splitlines(keepends=True),
            actual.text().splitlines(keepends=True),
            f"tests/golden/keys/{name}/keys.json",
            "this build",
        )
    )
    if expected.key_format == actual.key_format:
        head = (
            f"cache keys changed: bump KEY_FORMAT in layerbuild/plan/keys.py (old records must "
            f"not be reused) and regenerate with {REGENERATE}"
        )
    else:
        head = (
            f"KEY_FORMAT is {actual.key_format} but tests/golden/keys/{name}/keys.json was made "
            f"under {expected.key_format}: regenerate with {REGENERATE}"
        )
    return f"{head}\n{diff}"


def check(name: str, actual: KeyGolden) -> None:
    """Compare with (or, under UPDATE_GOLDEN=1, write) tests/golden/keys/<name>/keys.json."""
    path = GOLDEN / name / "keys.json"
    if UPDATE:
        path.write_text(actual.text(), encoding="utf-8")
        return
    assert path.exists(), f"{path} missing: regenerate with {REGENERATE}"
    problem = compare(KeyGolden.read(path), actual, name)
    assert problem is None, problem
