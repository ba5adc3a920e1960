"""Every registry fault through a fault-injecting proxy in front of the real Distribution
registry: each command ends with the right exit status and a one-line message (never a
traceback), every blob in the store hashes to its name, and tags made before are intact."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from layerbuild.image.validate import validate_image
from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.pull import pull
from layerbuild.registry.push import push
from layerbuild.store.images import tag as set_tag
from layerbuild.store.layout import Store
from tests.integration.registry.images import random_image
from tests.support.cli import make_context
from tests.support.faultproxy import (
    CUT,
    CUT_UPLOAD,
    REDIRECT,
    RESET,
    STALL,
    STATUS,
    TAMPER,
    TRUNCATE,
    Fault,
    FaultProxy,
)
from tests.support.registry import PASSWORD, USER, RegistryCLI, RegistryServer, TokenIssuer

pytestmark = [pytest.mark.registry, pytest.mark.slow]

MANIFEST = r"/manifests/"
BLOB = r"/blobs/sha256:"
PREVIOUS = "previous:1"


def store_blobs_verify(store: Path) -> int:
    """Assert that every blob in the store hashes to its name; the number of blobs."""
    blobs = sorted((store / "blobs" / "sha256").iterdir())
    for blob in blobs:
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob
    return len(blobs)


@pytest.fixture
def proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    with FaultProxy(registry.port) as p:
        yield p


@pytest.fixture
def image(registry: RegistryServer, tmp_path: Path) -> str:
    """An image of three small layers in the registry as fault/app:1 (its repository)."""
    source = Store.open(tmp_path / "source")
    desc = random_image(source, [20_000, 300_000, 50_000])
    push(source, desc, f"{registry.host}/fault/app:1")
    return str(desc.digest)


@pytest.fixture
def cli(registry_cli: RegistryCLI, fast: None) -> RegistryCLI:
    """The CLI over a store that already holds a tagged image (which faults must not touch)."""
    store = Store.open(registry_cli.store)
    set_tag(store, PREVIOUS, random_image(store, [10_000]))
    return registry_cli


def assert_intact(cli: RegistryCLI, previous_digest: str | None = None) -> None:
    assert store_blobs_verify(cli.store) > 0
    assert PREVIOUS in cli.image_names()
    assert cli.inspect(PREVIOUS)["Digest"]
    if previous_digest is not None:
        assert cli.inspect(PREVIOUS)["Digest"] == previous_digest


def one_line_error(stderr: str, pattern: str) -> None:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and re.search(pattern, errors[0]), stderr


@pytest.mark.parametrize("kind", [CUT, TRUNCATE, RESET])
def test_a_cut_manifest_is_retried(
    kind: str, proxy: FaultProxy, image: str, cli: RegistryCLI
) -> None:
    proxy.add("GET", MANIFEST, Fault(kind, after=40))
    proc = cli("pull", f"{proxy.host}/fault/app:1")
    assert proc.returncode == 0, proc.stderr
    assert proxy.kinds() == [kind]
    assert cli.inspect(f"{proxy.host}/fault/app:1")["Digest"] == image
    assert_intact(cli)


def test_a_manifest_cut_every_time_is_one_line_exit_8(
    proxy: FaultProxy, image: str, cli: RegistryCLI
) -> None:
    proxy.add("GET", MANIFEST, Fault(CUT, after=10), times=None)
    proc = cli("pull", f"{proxy.host}/fault/app:1")
    assert proc.returncode == 8
    one_line_error(
        proc.stderr, rf"cannot reach registry {proxy.host} \(GET .*/manifests/1\): IncompleteRead"
    )
    assert proxy.kinds() == [CUT] * 4  # the first try and three retries
    assert_intact(cli)


@pytest.mark.parametrize("kind", [CUT, TRUNCATE, RESET])
def test_a_cut_blob_resumes(kind: str, proxy: FaultProxy, image: str, cli: RegistryCLI) -> None:
    proxy.add("GET", BLOB, Fault(kind, after=5000), times=2)
    proc = cli("pull", f"{proxy.host}/fault/app:1")
    assert proc.returncode == 0, proc.stderr
    assert proxy.kinds() == [kind, kind]
    assert_intact(cli)
    assert cli.inspect(f"{proxy.host}/fault/app:1")["Digest"] == image


def test_a_tampered_blob_is_refused_and_never_stored(
    proxy: FaultProxy, image: str, cli: RegistryCLI
) -> None:
    proxy.add("GET", BLOB, Fault(TAMPER), times=None)
    before = store_blobs_verify(cli.store)
    proc = cli("pull", f"{proxy.host}/fault/app:1")
    assert proc.returncode == 8
    one_line_error(proc.stderr, r"does not match its digest")
    assert TAMPER in proxy.kinds()
    assert f"{proxy.host}/fault/app:1" not in cli.image_names()
    # only the manifest (verified against its tag's digest) may have been stored
    assert store_blobs_verify(cli.store) <= before + 1
    assert_intact(cli)


@pytest.mark.parametrize("what", ["blob", "manifest"])
def test_a_redirect_to_another_port_is_followed(
    what: str, proxy: FaultProxy, image: str, cli: RegistryCLI
) -> None:
    proxy.add("GET", BLOB if what == "blob" else MANIFEST, Fault(REDIRECT))
    proc = cli("pull", f"{proxy.host}/fault/app:1")
    assert proc.returncode == 0, proc.stderr
    assert proxy.kinds() == [REDIRECT]
    assert_intact(cli)


def _gap_after_fault(proxy: FaultProxy, same: str = "") -> float:
    """Seconds between the (first) injected fault and the next request whose target has
    `same` in it (blobs are sent in parallel: other blobs' requests do not count)."""
    fault_at = proxy.injected[0].at
    later = [at for _, target, at in proxy.seen if at > fault_at and same in target]
    return later[0] - fault_at


@pytest.mark.parametrize(("status", "retry_after"), [(503, "2"), (429, None), (429, "date")])
def test_5xx_and_429_honour_retry_after(
    status: int, retry_after: str | None, proxy: FaultProxy, image: str, cli: RegistryCLI
) -> None:
    if retry_after == "date":
        # the CLI needs a second or two to start: the date leaves some seconds after that
        retry_after = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 6))
    proxy.add("GET", MANIFEST, Fault(STATUS, status=status, retry_after=retry_after))
    proc = cli("pull", f"{proxy.host}/fault/app:1")
    assert proc.returncode == 0, proc.stderr
    assert proxy.kinds() == [STATUS]
    gap = _gap_after_fault(proxy)
    if retry_after is None:
        assert gap < 1.0  # only the 0.05 s backoff
    else:
        assert 1.0 <= gap < 8.0  # 2 s, or until the date
    assert_intact(cli)


def test_persistent_503_is_one_line_exit_8(
    proxy: FaultProxy, image: str, cli: RegistryCLI
) -> None:
    proxy.add("GET", MANIFEST, Fault(STATUS, status=503), times=None)
    proc = cli("pull", f"{proxy.host}/fault/app:1")
    assert proc.returncode == 8
    one_line_error(proc.stderr, r"the registry answered 503 \(UNAVAILABLE: injected")
    assert_intact(cli)


def test_retry_after_on_a_blob_upload_put(
    registry: RegistryServer, proxy: FaultProxy, cli: RegistryCLI
) -> None:
    store = Store.open(cli.store)
    set_tag(store, f"{proxy.host}/fault/up:1", random_image(store, [30_000]))
    proxy.add("PUT", r"/blobs/uploads/", Fault(STATUS, status=503, retry_after="2"))
    proc = cli("push", f"{proxy.host}/fault/up:1")
    assert proc.returncode == 0, proc.stderr
    assert proxy.kinds() == [STATUS]
    digest = proxy.injected[0].target.split("digest=")[1]
    assert 1.9 <= _gap_after_fault(proxy, same=digest) < 5.0
    assert_intact(cli)


def test_a_stalled_connection_ends_by_the_timeout(
    proxy: FaultProxy, image: str, cli: RegistryCLI
) -> None:
    proxy.add("GET", MANIFEST, Fault(STALL))
    start = time.monotonic()
    proc = cli("pull", f"{proxy.host}/fault/app:1", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert 2.0 <= time.monotonic() - start < 30  # one 2 s timeout, then the retry
    assert proxy.kinds() == [STALL]
    assert_intact(cli)


def test_a_registry_that_always_stalls_fails_in_bounded_time(
    proxy: FaultProxy, image: str, cli: RegistryCLI
) -> None:
    proxy.add("GET", MANIFEST, Fault(STALL), times=None)
    start = time.monotonic()
    proc = cli("pull", f"{proxy.host}/fault/app:1", timeout=60)
    assert time.monotonic() - start < 30  # four 2 s timeouts and short backoffs
    assert proc.returncode == 8
    one_line_error(proc.stderr, rf"cannot reach registry {proxy.host} .*timed out")
    assert_intact(cli)


def test_build_with_a_missing_base_survives_a_cut_manifest(
    proxy: FaultProxy, image: str, cli: RegistryCLI, tmp_path: Path
) -> None:
    base = f"{proxy.host}/fault/app:1"
    ctx = make_context(tmp_path / "ctx", {"Dockerfile": f"FROM {base}\nLABEL fault=cut\n"})
    proxy.add("GET", MANIFEST, Fault(RESET, after=30))
    proc = cli("build", "--progress", "plain", "-t", "built:1", ctx)
    assert proc.returncode == 0, proc.stderr
    assert proxy.kinds() == [RESET]
    assert cli.inspect(base)["Digest"] == image
    assert_intact(cli)


def test_build_with_a_base_whose_manifest_is_always_cut_is_exit_5(
    proxy: FaultProxy, image: str, cli: RegistryCLI, tmp_path: Path
) -> None:
    base = f"{proxy.host}/fault/app:1"
    ctx = make_context(tmp_path / "ctx", {"Dockerfile": f"FROM {base}\nLABEL fault=cut\n"})
    proxy.add("GET", MANIFEST, Fault(TRUNCATE), times=None)
    proc = cli("build", "--progress", "plain", "-t", "built:1", ctx)
    assert proc.returncode == 5, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(rf"cannot reach registry {proxy.host} .*IncompleteRead", proc.stderr)
    assert "built:1" not in cli.image_names()
    assert_intact(cli)


def test_a_chunked_upload_over_64_mib_cut_part_way(
    registry: RegistryServer, proxy: FaultProxy, cli: RegistryCLI, tmp_path: Path
) -> None:
    store = Store.open(cli.store)
    desc = random_image(store, [65 << 20])
    ref = f"{proxy.host}/fault/big:1"
    set_tag(store, ref, desc)
    proxy.add("PATCH", r"/blobs/uploads/", Fault(CUT_UPLOAD, after=10 << 20))
    proc = cli("push", ref, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert CUT_UPLOAD in proxy.kinds()
    assert_intact(cli)
    fresh = Store.open(tmp_path / "fresh")
    pulled = pull(fresh, f"{registry.host}/fault/big:1", options=RegistryOptions(retries=1))
    assert str(pulled.digest) == str(desc.digest)
    assert validate_image(fresh.content.read_bytes, pulled) == []
    assert store_blobs_verify(fresh.root) > 0


@pytest.fixture
def token_proxy(token_issuer: TokenIssuer) -> Iterator[FaultProxy]:
    with FaultProxy(token_issuer.port) as p:
        yield p


@pytest.fixture
def registry_via_token_proxy(
    tmp_path: Path, token_issuer: TokenIssuer, token_proxy: FaultProxy
) -> Iterator[RegistryServer]:
    """A token-auth registry whose realm is the proxy in front of the token server."""
    auth = token_issuer.registry_auth()
    auth["token"]["realm"] = f"http://{token_proxy.host}/token"
    server = RegistryServer(tmp_path / "registry-token", auth=auth).start()
    try:
        yield server
    finally:
        server.kill()


def test_cut_token_answers_are_retried_and_a_lost_token_server_is_exit_8(
    registry_via_token_proxy: RegistryServer, token_proxy: FaultProxy, cli: RegistryCLI
) -> None:
    host = registry_via_token_proxy.host
    token_proxy.add("GET", r"^/token", Fault(CUT, after=20))
    token_proxy.add("GET", r"^/token", Fault(RESET, after=0), nth=2)
    login = cli("login", "-u", USER, "--password-stdin", host, input=PASSWORD + "\n")
    assert login.returncode == 0, login.stderr
    store = Store.open(cli.store)
    set_tag(store, f"{host}/fault/tok:1", random_image(store, [20_000]))
    token_proxy.add("GET", r"^/token", Fault(TRUNCATE))  # counts from now on
    assert cli("push", f"{host}/fault/tok:1").returncode == 0
    assert token_proxy.kinds() == [CUT, RESET, TRUNCATE]

    token_proxy.add("GET", r"^/token", Fault(CUT, after=5), times=None)
    proc = cli("pull", f"{host}/fault/tok:1")
    assert proc.returncode == 8
    one_line_error(
        proc.stderr, rf"cannot reach registry {token_proxy.host} \(GET .*/token\): IncompleteRead"
    )
    assert "s3cret" not in proc.stderr
    assert_intact(cli)


def test_a_blob_lost_by_the_registry_names_that_cause(
    proxy: FaultProxy, image: str, cli: RegistryCLI
) -> None:
    proxy.add("GET", BLOB, Fault(STATUS, status=404), times=None)
    proc = cli("pull", f"{proxy.host}/fault/app:1")
    assert proc.returncode == 8
    one_line_error(proc.stderr, r"answered 404 for a blob that a manifest it served names")
    assert "hint: the registry lost a blob its manifest names" in proc.stderr
    assert "check the repository name" not in proc.stderr
    assert_intact(cli)
