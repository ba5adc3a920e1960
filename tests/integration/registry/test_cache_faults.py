"""A --cache-from that fails is a warning and a miss, as in BuildKit (moby/buildkit#2836); a
--cache-to that fails is an error unless it says ignore-error=true (moby/buildkit PR #3430).

Against the real Distribution registry: one that is down (a closed port), a cache whose layer
blob or manifest was altered in the registry's storage, a cache manifest of the wrong kind, a
damaged cache directory. Each build must succeed, say why it went without the cache, list the
failed source in the report, and run every step (a miss). A full disk in the store during an
import is not the source's fault and stays an error.
"""

from __future__ import annotations

import errno
import http.client
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from layerbuild.errors import HostError
from layerbuild.hosterrors import at_path
from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.remotecache.importer import import_caches
from layerbuild.registry.remotecache.spec import parse_cache_spec
from layerbuild.store.ingest import Ingest
from layerbuild.store.layout import Store
from tests.support.cli import Layerbuild, hash_blobs, make_context
from tests.support.registry import RegistryServer, free_port

pytestmark = [
    pytest.mark.registry,
    pytest.mark.root,
    pytest.mark.overlay,
    pytest.mark.slow,
    pytest.mark.usefixtures("fast"),  # a registry that is down is given up on in a second
]

DOCKERFILE = """\
FROM busybox
COPY a.txt /a.txt
RUN cat /a.txt /a.txt > /b.txt
"""
CACHE_CONFIG = "application/vnd.layerbuild.cache.config.v1+json"
MISSED = ["miss", "miss"]  # COPY and RUN: the steps after FROM


def _build(lb: Layerbuild, ctx: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    """`build --report` (any exit status): the process and the report it wrote."""
    out = ctx.parent / "report.json"
    out.unlink(missing_ok=True)
    proc = lb("build", "--progress", "plain", "-t", "app:1", "--report", out, *args, ctx)
    return proc, json.loads(out.read_text())


def _built_without(
    lb: Layerbuild, ctx: Path, source: str, reason: str, *args: str
) -> dict[str, Any]:
    """Build with the failing `--cache-from` `source`; it must succeed with every step run,
    a warning naming `source` and `reason`, and the failure in the report."""
    proc, report = _build(lb, ctx, "--cache-from", source, *args)
    assert proc.returncode == 0, proc.stderr
    ref = source.split("ref=")[-1].split("src=")[-1]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, proc.stderr
    assert warnings[0].startswith(f"warning: cache import from {ref} failed: ")
    assert warnings[0].endswith("; building without it") and reason in warnings[0]
    assert "Traceback" not in proc.stderr
    [entry] = report["cache_imports"]
    assert (entry["ref"], entry["status"], entry["records"]) == (ref, "failed", 0)
    assert reason in entry["reason"]
    assert [s["cache"] for s in report["steps"][1:]] == MISSED
    assert report["image"] is not None and lb.inspect("app:1")["Digest"] == report["image"]
    assert hash_blobs(lb.store) == []
    result: dict[str, Any] = report
    return result


def _pushed_cache(lb: Layerbuild, registry: RegistryServer, ctx: Path, tag: str) -> str:
    ref = f"{registry.host}/team/app:{tag}"
    lb.build(ctx, "-t", "app:1", "--cache-to", f"type=registry,ref={ref},mode=max")
    return ref


def _blob_data(registry: RegistryServer, digest: str) -> Path:
    hexd = digest.removeprefix("sha256:")
    path = registry.storage / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"
    assert path.is_file(), path
    return path


def _manifest_digest(registry: RegistryServer, repo: str, tag: str) -> str:
    link = registry.storage / "docker/registry/v2/repositories" / repo / "_manifests/tags"
    return (link / tag / "current/link").read_text().strip()


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    return make_context(tmp_path, {"Dockerfile": DOCKERFILE, "a.txt": "a\n"})


def test_a_registry_that_is_down_is_a_miss(
    new_store: Callable[[str], Layerbuild], ctx: Path
) -> None:
    source = f"type=registry,ref=127.0.0.1:{free_port()}/team/app:cache"
    _built_without(new_store("fresh"), ctx, source, "cannot reach registry")


def test_a_tampered_layer_blob_is_a_miss_and_no_record_of_that_cache_stays(
    registry: RegistryServer,
    lb: Layerbuild,
    new_store: Callable[[str], Layerbuild],
    ctx: Path,
) -> None:
    ref = _pushed_cache(lb, registry, ctx, "tampered-layer")
    manifest_path = _blob_data(registry, _manifest_digest(registry, "team/app", "tampered-layer"))
    layers = json.loads(manifest_path.read_bytes())["layers"]
    assert len(layers) == 2
    data = _blob_data(registry, layers[-1]["digest"])  # the RUN's layer; COPY's stays sound
    body = bytearray(data.read_bytes())
    body[-1] ^= 0xFF
    data.write_bytes(bytes(body))
    # the COPY misses too: its layer is sound, but a source is taken whole or not at all
    reason = "does not match its digest"
    _built_without(new_store("fresh"), ctx, f"type=registry,ref={ref}", reason)


@pytest.mark.parametrize("damage", ["altered", "truncated"])
def test_a_damaged_cache_manifest_in_the_registry_is_a_miss(
    registry: RegistryServer,
    lb: Layerbuild,
    new_store: Callable[[str], Layerbuild],
    ctx: Path,
    damage: str,
) -> None:
    ref = _pushed_cache(lb, registry, ctx, damage)
    data = _blob_data(registry, _manifest_digest(registry, "team/app", damage))
    body = data.read_bytes()
    if damage == "altered":  # still a cache manifest, one layer fewer: must not verify
        manifest = json.loads(body)
        manifest["layers"] = manifest["layers"][:1]
        data.write_bytes(json.dumps(manifest).encode())
    else:
        data.write_bytes(body[: len(body) // 2])
    # the registry serves the altered manifest under the old digest; a truncated one it
    # cannot parse, and answers 500 until the retries run out
    reason = "was expected" if damage == "altered" else "answered 500"
    _built_without(new_store("fresh"), ctx, f"type=registry,ref={ref}", reason)


def _put_manifest(registry: RegistryServer, repo: str, tag: str, manifest: dict[str, Any]) -> None:
    body = json.dumps(manifest).encode()
    conn = http.client.HTTPConnection("127.0.0.1", registry.port, timeout=30)
    try:
        media_type = manifest["mediaType"]
        conn.request("PUT", f"/v2/{repo}/manifests/{tag}", body, {"Content-Type": media_type})
        resp = conn.getresponse()
        assert resp.status == 201, resp.read()
    finally:
        conn.close()


def test_a_manifest_that_is_no_cache_is_a_miss(
    registry: RegistryServer,
    lb: Layerbuild,
    new_store: Callable[[str], Layerbuild],
    ctx: Path,
) -> None:
    """A well-formed manifest whose config is an image config, not a cache's (pushed with a
    raw PUT, as a wrong tag or another tool would leave it)."""
    _pushed_cache(lb, registry, ctx, "real")
    real = json.loads(
        _blob_data(registry, _manifest_digest(registry, "team/app", "real")).read_bytes()
    )
    assert real["config"]["mediaType"] == CACHE_CONFIG
    bogus = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": real["config"] | {"mediaType": "application/vnd.oci.image.config.v1+json"},
        "layers": [],
    }
    _put_manifest(registry, "team/app", "bogus", bogus)
    ref = f"{registry.host}/team/app:bogus"
    _built_without(
        new_store("fresh"), ctx, f"type=registry,ref={ref}", "is not a layerbuild cache"
    )


@pytest.mark.parametrize(
    ("damage", "reason"),
    [("index", "is not a cache written by --cache-to"), ("blob", "is corrupt")],
)
def test_a_damaged_cache_directory_is_a_miss(
    lb: Layerbuild,
    new_store: Callable[[str], Layerbuild],
    ctx: Path,
    tmp_path: Path,
    damage: str,
    reason: str,
) -> None:
    cache = tmp_path / "cache"
    lb.build(ctx, "-t", "app:1", "--cache-to", f"type=local,dest={cache},mode=max")
    if damage == "index":
        (cache / "index.json").write_text('{"manifests": [')
    else:
        index = json.loads((cache / "index.json").read_text())
        manifest = cache / "blobs/sha256" / index["manifests"][0]["digest"].removeprefix("sha256:")
        layer = json.loads(manifest.read_bytes())["layers"][-1]["digest"]
        (cache / "blobs/sha256" / layer.removeprefix("sha256:")).write_bytes(b"not the layer")
    _built_without(new_store("fresh"), ctx, f"type=local,src={cache}", reason)


def test_the_failed_source_does_not_stop_a_good_one(
    registry: RegistryServer,
    lb: Layerbuild,
    new_store: Callable[[str], Layerbuild],
    ctx: Path,
    tmp_path: Path,
) -> None:
    """Several --cache-from: the broken one is skipped, the next one still gives hits."""
    cache = tmp_path / "cache"
    lb.build(ctx, "-t", "app:1", "--cache-to", f"type=local,dest={cache},mode=max")
    down = f"127.0.0.1:{free_port()}/team/app:cache"
    fresh = new_store("fresh")
    proc, report = _build(
        fresh,
        ctx,
        "--cache-from",
        f"type=registry,ref={down}",
        "--cache-from",
        f"type=local,src={cache}",
    )
    assert proc.returncode == 0, proc.stderr
    assert f"warning: cache import from {down} failed: cannot reach registry" in proc.stderr
    assert [(e["status"], e["records"]) for e in report["cache_imports"]] == [
        ("failed", 0),
        ("imported", 2),
    ]
    assert [s["cache"] for s in report["steps"][1:]] == ["hit", "hit"]


def test_a_full_store_during_a_registry_import_stays_an_error(
    registry: RegistryServer,
    lb: Layerbuild,
    ctx: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ENOSPC while a cache blob is written into the store is this machine's fault: it must
    not be taken for a failed download and hidden as a miss."""
    ref = _pushed_cache(lb, registry, ctx, "full")

    def full(self: Ingest, data: bytes) -> int:
        blob = tmp_path / "full-store" / "ingest" / "blob.tmp"
        raise at_path(OSError(errno.ENOSPC, "No space left on device"), blob)

    monkeypatch.setattr(Ingest, "write", full)
    store = Store.open(tmp_path / "full-store")
    spec = parse_cache_spec(f"type=registry,ref={ref}", "from")
    notes: list[str] = []
    with pytest.raises((HostError, OSError)) as e:
        import_caches(store, [spec], RegistryOptions(retries=1, backoff=0.01), notes.append)
    assert e.value.errno == errno.ENOSPC
    assert str(store.root) in str(e.value)
    assert not any(n.startswith("warning:") for n in notes)


def test_a_failed_export_with_ignore_error_is_a_warning(lb: Layerbuild, ctx: Path) -> None:
    ref = f"127.0.0.1:{free_port()}/team/app:cache"
    proc, report = _build(lb, ctx, "--cache-to", f"type=registry,ref={ref},ignore-error=true")
    assert proc.returncode == 0, proc.stderr
    assert f"warning: cache export to {ref} failed: cannot reach registry" in proc.stderr
    assert "ignored (ignore-error=true)" in proc.stderr
    [entry] = report["cache_exports"]
    assert (entry["ref"], entry["status"]) == (ref, "failed")
    assert "cannot reach registry" in entry["reason"]
    assert lb.inspect("app:1")["Digest"] == report["image"]


def test_a_failed_export_without_ignore_error_fails_but_the_image_is_tagged(
    lb: Layerbuild, ctx: Path
) -> None:
    """Today's contract, kept: the tags are set before the export, so the image is there;
    the build exits as a registry error (8) and says so."""
    ref = f"127.0.0.1:{free_port()}/team/app:cache"
    proc, report = _build(lb, ctx, "--cache-to", f"type=registry,ref={ref}")
    assert proc.returncode == 8, proc.stderr
    assert f"error: cache export to {ref} failed: cannot reach registry" in proc.stderr
    assert "the image was built and tagged" in proc.stderr and "ignore-error=true" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert [e["status"] for e in report["cache_exports"]] == ["failed"]
    assert [s["cache"] for s in report["steps"][1:]] == MISSED
    assert lb.inspect("app:1")["Digest"].startswith("sha256:")
