"""A fully cached rebuild imports only what it uses: no HTTP or TLS stack, no registry client,
no RUN sandbox, no layer compressors or tar readers, no exporters, no other command's module.

Start-up is most of a no-change rebuild's time, and it is paid in imports; the modules below
are loaded inside the functions that need them (pushing, pulling, running, packing, exporting),
and this test fails when one of them is pulled back into the path of a build that reuses every
step. The build runs through the real CLI, with the context walkers, under a wrapper that
records sys.modules (tests/support/imports.py).

The context is aged past the stat cache's racy margin (2 s, as in test_cache_quick.py) so the
rebuild is the settled one a user sees: a file changed within the margin is read and hashed
again, and that path (a COPY that reads files) imports what reading them needs.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from tests.support.cli import make_context
from tests.support.imports import Imports, WatchedLayerbuild, forbidden

AGE_S = 2.3  # the stat cache's racy margin is 2 s

# Each entry stands for the module and its submodules.
UNNEEDED = (
    # the network: only pull, push, --cache-to/from type=registry and ADD <url> speak HTTP
    "http",
    "ssl",
    "socket",
    "urllib.request",
    "email",
    "layerbuild.registry.auth",
    "layerbuild.registry.client",
    "layerbuild.registry.credentials",
    "layerbuild.registry.progress",
    "layerbuild.registry.pull",
    "layerbuild.registry.push",
    "layerbuild.registry.transport",
    "layerbuild.engine.fetch",
    "layerbuild.engine.gitsource",
    "layerbuild.engine.sshforward",
    "layerbuild.engine.stdincontext",
    # RUN's sandbox: nothing runs when every RUN is a hit
    "ctypes",
    "layerbuild.sandbox.child",
    "layerbuild.sandbox.copyroot",
    "layerbuild.sandbox.linux",
    "layerbuild.sandbox.mounts",
    "layerbuild.sandbox.overlaydiff",
    "layerbuild.sandbox.runner",
    "layerbuild.sandbox.spawn",
    "layerbuild.sandbox.usernet",
    "layerbuild.sandbox.userns",
    # layers: a hit packs, unpacks and reads no layer
    "gzip",
    "isal",
    "tarfile",
    "zstandard",
    "layerbuild.image.archive",
    "layerbuild.image.compress",
    "layerbuild.image.decompress",
    "layerbuild.image.tarreader",
    "layerbuild.image.tarheader",
    "layerbuild.image.tarwriter",
    "layerbuild.engine.chmod",
    "layerbuild.engine.copysemantics",
    "layerbuild.engine.copyop",
    "layerbuild.engine.imageread",
    "layerbuild.store.gc",
    "layerbuild.store.layerentries",
    "layerbuild.store.materialize",
    "layerbuild.store.unpack",
    # outputs and the other commands: none was asked for
    "layerbuild.export.archivemembers",
    "layerbuild.export.docker_tar",
    "layerbuild.export.load",
    "layerbuild.export.oci_layout",
    "layerbuild.export.oci_tar",
    "layerbuild.export.rootfs",
    "layerbuild.cli.analyze",
    "layerbuild.cli.cache",
    "layerbuild.cli.fsck",
    "layerbuild.cli.images",
    "layerbuild.cli.registry",
    "layerbuild.cli.run",
    "layerbuild.engine.runimage",
    "layerbuild.ui.cachelisting",
    "layerbuild.analyze",
    "layerbuild.ui.analysis",
    "layerbuild.image.efficiency",
    "layerbuild.image.waste",
    # the terminal renderer (plain progress here)
    "rich",
    # heavy standard library that no part of a build uses
    "asyncio",
    "multiprocessing",
    "xml",
    # used only when something goes wrong or is asked for: warnings of the gzip block cache,
    # HEALTHCHECK durations, --cache-from/--cache-to, a thread pool for snapshots
    "logging",
    "decimal",
    "concurrent.futures",
    "layerbuild.registry.remotecache.exporter",
    "layerbuild.registry.remotecache.importer",
    # RUN --mount: parsed only for a RUN that has the flag
    "layerbuild.engine.runmounts",
)

COPY_ONLY = """\
FROM busybox
ENV APP=/app
COPY src/ $APP/
COPY --chown=1:1 src/*.txt /txt/
COPY --from=busybox /bin/true /true
"""
WITH_RUN = COPY_ONLY + "RUN cat /app/a.txt > /copy\n"
WITH_WORKDIR = COPY_ONLY + "WORKDIR $APP/work\n"  # creates a directory: a layer
FILES = {"src/a.txt": "a\n", "src/sub/b.txt": "b\n", "src/c.txt": "c\n"}


@pytest.fixture
def watched(store_root: Path, tmp_path: Path) -> WatchedLayerbuild:
    return WatchedLayerbuild(store_root, record=tmp_path / "imports.json")


def cached_rebuild(lb: WatchedLayerbuild, ctx: Path, *args: str) -> Imports:
    """Build `ctx` twice (the second time with `args`); the second reuses every step."""
    lb.build(ctx, "-t", "s:1")
    steps = lb.report_steps(ctx, "-t", "s:1", *args)
    assert [s["cache"] for s in steps] == ["hit"] * len(steps), steps
    return lb.imports()


def aged_context(tmp_path: Path, dockerfile: str) -> Path:
    ctx = make_context(tmp_path, {"Dockerfile": dockerfile, **FILES})
    time.sleep(AGE_S)
    return ctx


@pytest.mark.parametrize(
    "dockerfile",
    [
        pytest.param(COPY_ONLY, id="copy"),
        pytest.param(WITH_RUN, id="run", marks=[pytest.mark.root, pytest.mark.overlay]),
        pytest.param(WITH_WORKDIR, id="workdir"),
    ],
)
def test_cached_rebuild_imports_nothing_unneeded(
    watched: WatchedLayerbuild, tmp_path: Path, dockerfile: str
) -> None:
    imports = cached_rebuild(watched, aged_context(tmp_path, dockerfile))
    # a module the interpreter loaded on its own would be invisible to the check
    assert forbidden(imports.preloaded, UNNEEDED) == []
    assert "layerbuild.engine.executor" in imports.imported  # the build ran under the watch
    assert forbidden(imports.imported, UNNEEDED) == []


def test_an_export_is_seen(watched: WatchedLayerbuild, tmp_path: Path) -> None:
    """The same cached rebuild asked for an OCI tarball must import the exporter and tarfile:
    the watch sees what the build loads after its start."""
    out = tmp_path / "img.tar"
    imports = cached_rebuild(
        watched, aged_context(tmp_path, COPY_ONLY), "-o", f"type=oci,dest={out}"
    )
    found = forbidden(imports.imported, UNNEEDED)
    assert {"tarfile", "layerbuild.export.oci_tar"} <= set(found), found


def test_every_denied_layerbuild_module_exists() -> None:
    """A deny-listed name that no longer names a module (after a move or a rename) would
    never be found imported: the list must follow the code."""
    ours = [name for name in UNNEEDED if name.split(".")[0] == "layerbuild"]
    assert [name for name in ours if importlib.util.find_spec(name) is None] == []


def test_forbidden_names_submodules_not_prefixes() -> None:
    loaded = ["http", "http.client", "httpx", "sslx", "layerbuild.store.gc", "tarfile"]
    assert forbidden(loaded, ["http", "ssl", "layerbuild.store.gc"]) == [
        "http",
        "http.client",
        "layerbuild.store.gc",
    ]
    assert forbidden(loaded, []) == []
