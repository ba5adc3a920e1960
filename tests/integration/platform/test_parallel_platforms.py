"""The platforms of a multi-platform build run at once (--jobs, engine/multiplatform.py):
the same index whichever finished first, faster, and stopped together when one fails."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.integration.conftest import MakeContext
from tests.support.cli import Layerbuild, stray_files
from tests.support.parallel import sleeps, timed_build

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.usefixtures("qemu_binfmt")]
BOTH = ("--platform", "linux/amd64,linux/arm64")

ARM64_FAILS = """\
FROM mbusybox
RUN [ "$(uname -m)" != aarch64 ] || { sleep 1; exit 3; }; sleep 30
"""


def test_index_digest_does_not_depend_on_jobs(
    mlb: Layerbuild, make_context: MakeContext, tmp_path: Path
) -> None:
    """Each platform's steps (a RUN, a COPY) built from nothing with --jobs 2 and --jobs 1:
    one index digest."""
    ctx = make_context(
        tmp_path,
        {"Dockerfile": "FROM mbusybox\nRUN uname -m > /arch\nCOPY a /a\n", "a": "a\n"},
    )
    digests = []
    for jobs in ("2", "1", "2"):
        iid = tmp_path / f"iid-{len(digests)}"
        epoch = ("--build-arg", "SOURCE_DATE_EPOCH=0")
        args = ("--no-cache", *epoch, "--jobs", jobs, "-t", "app:1", "--iidfile", iid)
        mlb.build(ctx, *BOTH, *args)
        digests.append(iid.read_text())
        index = json.loads(mlb.ok("inspect", "--raw", "app:1").stdout)
        arches = [m["platform"]["architecture"] for m in index["manifests"]]
        assert arches == ["amd64", "arm64"], f"--jobs {jobs}"
    assert len(set(digests)) == 1, digests


def test_platforms_run_at_once(mlb: Layerbuild, make_context: MakeContext, tmp_path: Path) -> None:
    """Each platform a `sleep 2`: with --jobs 2, well under twice the time of arm64's alone
    (the slower one: QEMU starts first); 4 s or more with --jobs 1."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM mbusybox\nRUN sleep 2\n"})
    mlb.build(ctx, *BOTH, "--jobs", "1")  # the bases' layer snapshots, unpacked once
    one = timed_build(mlb, ctx, "--platform", "linux/arm64")
    parallel = timed_build(mlb, ctx, *BOTH, "--jobs", "2")
    serial = timed_build(mlb, ctx, *BOTH, "--jobs", "1")
    assert serial >= 4.0
    figures = f"--jobs 2 took {parallel:.1f}s (--jobs 1: {serial:.1f}s, arm64 alone {one:.1f}s)"
    assert parallel < 1.5 * one and parallel < serial - 1.2, figures


def test_a_failing_platform_stops_the_others(
    mlb: Layerbuild, make_context: MakeContext, tmp_path: Path
) -> None:
    """arm64's RUN exits 3 while amd64's sleeps 30 s: the build ends at once with arm64's
    error, amd64's sandbox killed and reaped, nothing mounted, half-written or tagged."""
    ctx = make_context(tmp_path, {"Dockerfile": ARM64_FAILS})
    before = sleeps("30")
    t0 = time.monotonic()
    args = ("--progress", "plain", "--network", "none", "--jobs", "2", *BOTH, "-t", "app:1")
    proc = mlb("build", *args, ctx)
    seconds = time.monotonic() - t0
    assert proc.returncode == 4, proc.stderr
    assert seconds < 15, f"the build took {seconds:.1f}s to stop"
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("error: linux/arm64: ") and error.endswith("exit code 3"), error
    assert sleeps("30") - before == set()
    assert str(mlb.store) not in Path("/proc/self/mountinfo").read_text()
    assert stray_files(mlb.store) == []
    assert list((mlb.store / "snapshots" / "layers").glob("tmp-*")) == []
    assert "app" not in mlb.ok("images").stdout


def test_cache_to_builds_the_platforms_one_after_another(
    mlb: Layerbuild, make_context: MakeContext, tmp_path: Path
) -> None:
    """Each platform's build exports its records to the --cache-to directory; never two at
    once (an export removes the blobs its records do not name), so the platforms are built in
    turn, and the directory is a whole OCI layout."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM mbusybox\nRUN uname -m > /arch\n"})
    dest = tmp_path / "cache"
    args = ("--jobs", "2", "--cache-to", f"type=local,dest={dest}")
    plain = mlb.build(ctx, *BOTH, *args).stderr
    started = [line.split(" [", 1)[1] for line in plain.splitlines() if " [linux/" in line]
    assert [s.split()[0] for s in started] == ["linux/amd64"] * 2 + ["linux/arm64"] * 2
    index = json.loads((dest / "index.json").read_text())
    blobs = dest / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":")[1]).read_text())
    for desc in (manifest["config"], *manifest["layers"]):
        assert (blobs / desc["digest"].split(":")[1]).is_file()
