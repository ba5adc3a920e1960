"""Drive the real `layerbuild` command and read what it wrote with tools we did not write.

Name: Layerbuild (the CLI in a subprocess), make_context, run_tool, unpack, tree, OciImage.
Scope: tests/integration: every feature is checked through `python -m layerbuild`, and the
       images it writes are read back by umoci/skopeo or by plain tarfile/json, never by the
       layerbuild modules under test.
Depends: the standard library, pytest, and the Debian tools skopeo/umoci/oci-image-tool/podman
       for run_tool/unpack (a missing tool fails the test: CI installs them all).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL_TIMEOUT = 300


@dataclass(frozen=True)
class Layerbuild:
    """`python -m layerbuild --root STORE ...` in a subprocess with a clean environment;
    `prefix`: a command it runs under (`prlimit --nofile=8`, `setpriv ...`)."""

    store: Path
    prefix: tuple[str, ...] = field(default=(), kw_only=True)  # subclasses add positional fields

    def __call__(
        self,
        *args: str | os.PathLike[str],
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._argv(args),
            capture_output=True,
            text=True,
            input=input,
            env=self._env(env),
            cwd=cwd or REPO,
            timeout=timeout,
            check=False,
        )

    def spawn(
        self, *args: str | os.PathLike[str], output: IO[str] | None = None
    ) -> subprocess.Popen[str]:
        """The same command started in the background (for concurrent or killed builds);
        `output`: a file both its streams go to, instead of pipes."""
        return subprocess.Popen(
            self._argv(args),
            stdout=output or subprocess.PIPE,
            stderr=subprocess.STDOUT if output else subprocess.PIPE,
            text=True,
            env=self._env(None),
            cwd=REPO,
        )

    def _argv(self, args: tuple[str | os.PathLike[str], ...]) -> list[str]:
        command = [sys.executable, "-m", "layerbuild", "--root", str(self.store)]
        return [*self.prefix, *command, *map(str, args)]

    def _env(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("SOURCE_DATE_EPOCH", "LAYERBUILD_ROOT")
        }
        env["PYTHONPATH"] = str(REPO)
        env.update(extra or {})
        return env

    def ok(self, *args: str | os.PathLike[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        """Run and fail the test (showing both streams) unless the exit status is 0."""
        proc = self(*args, **kw)
        if proc.returncode != 0:
            pytest.fail(
                f"layerbuild {' '.join(map(str, args))} exited {proc.returncode}\n"
                f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return proc

    def build(
        self, context: Path, *args: str | os.PathLike[str], **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        return self.ok("build", "--progress", "plain", *args, context, **kw)

    def report_steps(
        self, context: Path, *args: str | os.PathLike[str], **kw: Any
    ) -> list[dict[str, Any]]:
        """Build `context` and return the steps of its `--report`."""
        out = context.parent / "report.json"
        self.build(context, "--report", out, *args, **kw)
        steps = json.loads(out.read_text())["steps"]
        assert isinstance(steps, list)
        return steps

    def build_oci(
        self, context: Path, *args: str | os.PathLike[str], tag: str = "test:1", **kw: Any
    ) -> Path:
        """Build `context` as `tag` and return the OCI tarball it was also written to."""
        out = Path(tempfile.mkdtemp(prefix="out-", dir=self.store.parent)) / "img.tar"
        self.build(context, "-t", tag, "-o", f"type=oci,dest={out}", *args, **kw)
        return out

    def rootfs(self, context: Path, *args: str | os.PathLike[str], **kw: Any) -> Path:
        """Build `context` and return its rootfs as umoci unpacks it."""
        return unpack(self.build_oci(context, *args, tag="test:1", **kw), "1")

    def inspect(self, name: str) -> dict[str, Any]:
        result = json.loads(self.ok("inspect", name).stdout)
        assert isinstance(result, dict)
        return result

    def config(self, name: str) -> dict[str, Any]:
        """The image config JSON exactly as stored."""
        result = json.loads(self.ok("inspect", "--config", name).stdout)
        assert isinstance(result, dict)
        return result

    def image_names(self) -> set[str]:
        rows = json.loads(self.ok("images", "--format", "json").stdout)
        return {f"{row['repository']}:{row['tag']}" for row in rows}


def make_context(tmp_path: Path, files: Mapping[str, str | bytes], name: str = "ctx") -> Path:
    """A build context directory under tmp_path holding `files` (parents created)."""
    root = tmp_path / name
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
    return root


def run_tool(tool: str, *args: str | os.PathLike[str]) -> str:
    """Run a real OCI tool; the test fails (not skips) when it is missing or fails."""
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed (apt-get install {tool})")
    proc = subprocess.run(
        [tool, *map(str, args)], capture_output=True, text=True, timeout=TOOL_TIMEOUT
    )
    if proc.returncode != 0:
        pytest.fail(f"{tool} {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def extract_tar(archive: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest


def running(*argv: str) -> bool:
    """Whether a process runs this exact command line."""
    wanted = "\0".join(argv).encode() + b"\0"
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes() == wanted:
                return True
        except OSError:
            continue  # gone meanwhile
    return False


def unpack(oci: Path, tag: str) -> Path:
    """The rootfs of image `tag` in an OCI tarball or layout directory, unpacked by umoci."""
    work = Path(tempfile.mkdtemp(prefix=f"{oci.name}-umoci-", dir=oci.parent))
    layout = oci if oci.is_dir() else extract_tar(oci, work / "layout")
    run_tool("umoci", "unpack", "--image", f"{layout}:{tag}", work / "bundle")
    return work / "bundle" / "rootfs"


def tree(root: Path) -> dict[str, str]:
    """path -> 'dir' | '-> target' | file text, for comparing whole trees."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = path.read_bytes().decode("utf-8", "replace")
    return out


class OciImage:
    """Read an OCI tarball or layout directory with json and tarfile only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tar = None if path.is_dir() else tarfile.open(path)

    def read(self, name: str) -> bytes:
        if self._tar is None:
            return (self.path / name).read_bytes()
        member = self._tar.extractfile(name)
        assert member is not None, f"{name} is not a file in {self.path}"
        return member.read()

    def blob(self, digest: str) -> bytes:
        data = self.read("blobs/" + digest.replace(":", "/"))
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
        return data

    def json(self, digest: str) -> dict[str, Any]:
        result = json.loads(self.blob(digest))
        assert isinstance(result, dict)
        return result

    def index(self) -> dict[str, Any]:
        result = json.loads(self.read("index.json"))
        assert isinstance(result, dict)
        return result

    def manifest(self, i: int = 0) -> dict[str, Any]:
        return self.json(self.index()["manifests"][i]["digest"])

    def config(self) -> dict[str, Any]:
        return self.json(self.manifest()["config"]["digest"])

    def layer_members(self, n: int) -> list[tarfile.TarInfo]:
        """The entries of layer n (negative counts from the top), decompressed by tarfile."""
        desc = self.manifest()["layers"][n]
        data = self.blob(desc["digest"])
        if desc["mediaType"].endswith("+zstd"):
            import zstandard

            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            return tar.getmembers()


def hash_blobs(store: Path) -> list[str]:
    """Blob names in the store whose content does not hash to the name (should be empty)."""
    bad = []
    for path in sorted((store / "blobs" / "sha256").iterdir()):
        h = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        if h.hexdigest() != path.name:
            bad.append(path.name)
    return bad


def stray_files(store: Path) -> list[str]:
    """Temp files left in the store's ingest/ and blobs/ directories."""
    found = [str(p) for p in (store / "ingest").glob("*") if p.is_file()]
    blobs = store / "blobs"
    found += [str(p) for p in blobs.rglob("*") if p.is_file() and len(p.name) != 64]
    return found
