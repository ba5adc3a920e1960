"""Golden cache keys: tests/golden/keys/<case>/{Dockerfile,keys.json}.

Each case builds its Dockerfile through the CLI over a context made here (fixed contents,
modes and owners; built twice with different mtimes, which no key may see) on a base image
whose digest is the same on every machine (tests/support/keygolden.py), and compares every
step's key digest and named inputs with keys.json. A difference fails with the diff and says
what to do: a changed key invalidates every user's cache (or, worse, lets two inputs collide),
so it needs a KEY_FORMAT bump in layerbuild/plan/keys.py and a reviewed golden diff
(UPDATE_GOLDEN=1 rewrites keys.json).

`files` (FROM, ARG/ENV and --build-arg, COPY with globs, --chown, --chmod and --from, ADD of a
local tar, WORKDIR/USER/LABEL/EXPOSE/CMD) needs no root; `run` (RUN with cache, secret and bind
mounts, heredocs) runs RUN steps in the sandbox.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import REPO, Layerbuild
from tests.support.keygolden import (
    BASE_TAG,
    GOLDEN,
    UPDATE,
    KeyGolden,
    base_layout,
    build_keys,
    check,
    compare,
    input_digest,
    key_format,
    tar_bytes,
    write_context,
)

MTIMES = (1_600_000_000, 1_700_000_000)
AGE_S = 2.3  # the stat cache's racy margin is 2 s: older entries may vouch for a digest
FILES: dict[str, tuple[bytes, int]] = {
    ".dockerignore": (b"**/*.pyc\n", 0o644),
    "assets/a.txt": (b"asset a\n", 0o644),
    "assets/b.txt": (b"asset b\n", 0o600),
    "assets/skip.md": (b"not copied\n", 0o644),
    "src/main.py": (b"print('main')\n", 0o644),
    "src/util.py": (b"X = 1\n", 0o755),
    "src/main.pyc": (b"ignored\n", 0o644),
    "src/lib/helpers.txt": (b"helpers\n", 0o644),
    "config/app.toml": (b"[app]\nport = 8080\n", 0o640),
    "config/nested/extra.toml": (b"extra = true\n", 0o644),
    "bin/run.sh": (b"#!/bin/sh\nexec app\n", 0o644),
    "vendor.tar": (tar_bytes({"vendor/lib.txt": b"lib\n", "vendor/VERSION": b"3\n"}), 0o644),
}


@pytest.fixture
def keybase(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return base_layout(tmp_path_factory.mktemp("keybase") / "layout")


def _store(root: Path, layout: Path) -> Layerbuild:
    lb = Layerbuild(root)
    lb.ok("load", layout, "-t", BASE_TAG)
    return lb


def _context(tmp_path: Path, case: str, mtime: int) -> Path:
    root = tmp_path / f"{case}-{mtime}" / "ctx"
    files = {**FILES, "Dockerfile": ((GOLDEN / case / "Dockerfile").read_bytes(), 0o644)}
    return write_context(root, files, mtime)


def _files_keys(tmp_path: Path, keybase: Path, env: dict[str, str] | None = None) -> KeyGolden:
    """The keys of `files`, built in two stores over contexts with other mtimes, then once more
    in the second store: its context aged past the stat cache's racy margin, so that build may
    key a COPY by the quick path (names and lstat) where the first two read the files."""
    contexts = [_context(tmp_path, "files", mtime) for mtime in MTIMES]
    time.sleep(AGE_S)
    stores = [_store(tmp_path / f"store-{mtime}", keybase) for mtime in MTIMES]
    runs = [*zip(stores, contexts, strict=True), (stores[1], contexts[1])]
    builds: list[list[dict[str, Any]]] = [
        build_keys(lb, context, "--build-arg", "VERSION=1.2.3", env=env) for lb, context in runs
    ]
    assert builds[0] == builds[1], "a key changed with the files' mtimes"
    assert builds[1] == builds[2], "the quick path keyed a COPY differently"
    return KeyGolden(key_format(), builds[0])


def test_files_keys(tmp_path: Path, keybase: Path) -> None:
    check("files", _files_keys(tmp_path, keybase))


def test_golden_fails_when_a_key_input_changes(tmp_path: Path, keybase: Path) -> None:
    """The golden test can fail: a build whose key function sees one input described
    differently (the COPY sources digest, by a sitecustomize patch in the CLI's process) no
    longer matches keys.json, and the failure asks for a KEY_FORMAT bump."""
    patch = tmp_path / "patch"
    patch.mkdir()
    (patch / "sitecustomize.py").write_text(PATCH)
    env = {"PYTHONPATH": f"{patch}:{REPO}"}
    actual = _files_keys(tmp_path, keybase, env)
    problem = compare(KeyGolden.read(GOLDEN / "files" / "keys.json"), actual, "files")
    assert problem is not None
    assert problem.startswith("cache keys changed: bump KEY_FORMAT in layerbuild/plan/keys.py")
    assert '+        ["sources", "changed-sha256:' in problem


# rewrites the value of the `sources` input wherever a key is made of it
PATCH = """\
from layerbuild.plan import keys

_of = keys.CacheKey.of.__func__


def _patched(cls, inputs):
    items = [(k, "changed-" + v if k == "sources" else v) for k, v in inputs]
    return _of(cls, items)


keys.CacheKey.of = classmethod(_patched)
"""


@pytest.mark.root
@pytest.mark.overlay
def test_run_keys(tmp_path: Path, keybase: Path, busybox_layout: Path) -> None:
    lb = _store(tmp_path / "store", keybase)
    lb.ok("load", busybox_layout, "-t", "busybox:latest")
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "Dockerfile").write_text(
        "FROM busybox:latest\n"
        "RUN --mount=type=cache,id=shell,target=/shell cp /bin/busybox /shell/sh\n"
    )
    lb.build(seed)
    secret = tmp_path / "token"
    secret.write_text("s3cr3t\n")
    args = ("--secret", f"id=token,src={secret}", "--build-arg", "MODE=slow")
    builds = []
    for mtime in MTIMES:  # the second build hits every step: the bind's files are only touched
        context = _context(tmp_path, "run", mtime)
        builds.append(build_keys(lb, context, *args))
    assert builds[0] == builds[1], "a key changed with the files' mtimes"
    check("run", KeyGolden(key_format(), builds[0]))


@pytest.mark.parametrize("case", ["files", "run"])
def test_golden_digests_are_their_inputs(case: str) -> None:
    """Each pinned digest is sha256 of the canonical JSON of its pinned inputs, and each
    step's `parent` is the key before it: keys.json is what builds made, not hand edits."""
    golden = KeyGolden.read(GOLDEN / case / "keys.json")
    assert golden.key_format == key_format() or UPDATE
    previous: dict[str, str] = {}
    for step in golden.steps:
        assert step["key"] == input_digest(step["inputs"]), step["instruction"]
        inputs = dict(step["inputs"])
        if step["index"] > 1:
            assert inputs["parent"] == previous[step["stage"]]
            assert inputs["format"] == golden.key_format
        previous[step["stage"]] = step["key"]
