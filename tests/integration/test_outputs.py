"""Every --output type of one build, checked with the real tools and loaded back.

One build (module scope) writes all four outputs plus --iidfile and --metadata-file; each test
reads one of them. Tool notes (Debian versions) are in tests/integration/test_export_tools.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import (
    REPO,
    Layerbuild,
    OciImage,
    extract_tar,
    make_context,
    run_tool,
    tree,
    unpack,
)

pytestmark = pytest.mark.tools

DOCKERFILE = """\
FROM busybox
COPY app /app/
COPY --chown=app:app --chmod=0640 secret.txt /home/app/
WORKDIR /app
ENV MODE=prod
CMD ["/bin/sh", "/app/run.sh"]
"""


@dataclass(frozen=True)
class Outputs:
    lb: Layerbuild
    digest: str
    oci_tar: Path
    oci_dir: Path
    docker_tar: Path
    local: Path
    iidfile: Path
    metadata: Path
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def outputs(_loaded_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    base = tmp_path_factory.mktemp("outputs")
    store = base / "store"
    shutil.copytree(_loaded_store, store, symlinks=True)
    lb = Layerbuild(store)
    ctx = make_context(
        base,
        {
            "Dockerfile": DOCKERFILE,
            "app/run.sh": "echo running\n",
            "app/lib/util.sh": "true\n",
            "secret.txt": "s3cret\n",
        },
    )
    os.symlink("run.sh", ctx / "app/start")
    o = base / "out"
    o.mkdir()
    proc = lb.ok(
        "build", "--progress", "plain", "-t", "app:1", "-t", "app:latest",
        "-o", f"type=oci,dest={o / 'oci.tar'}",
        "-o", f"type=oci,dest={o / 'oci-dir'},tar=false",
        "-o", f"type=docker,dest={o / 'docker.tar'}",
        "-o", f"type=local,dest={o / 'rootfs'}",
        "--iidfile", o / "iid", "--metadata-file", o / "meta.json",
        ctx,
    )  # fmt: skip
    digest = lb.inspect("app:1")["Digest"]
    return Outputs(
        lb, digest, o / "oci.tar", o / "oci-dir", o / "docker.tar", o / "rootfs",
        o / "iid", o / "meta.json", proc.stdout, proc.stderr,
    )  # fmt: skip


EXPECTED = {
    "app/run.sh": "echo running\n",
    "app/lib/util.sh": "true\n",
    "app/start": "-> run.sh",
    "home/app/secret.txt": "s3cret\n",
}


def _check_tree(root: Path) -> None:
    found = tree(root)
    for path, content in EXPECTED.items():
        assert found[path] == content, path
    assert (root / "bin/busybox").is_file()
    assert (root / "home/app/secret.txt").stat().st_mode & 0o777 == 0o640


def test_oci_image_tool_validates_both_oci_outputs(outputs: Outputs) -> None:
    """oci-image-tool validates the layout directory and the extracted tarball, for each tag."""
    extracted = extract_tar(outputs.oci_tar, outputs.oci_tar.parent / "oci-extracted")
    for layout in (outputs.oci_dir, extracted):
        for tag in ("1", "latest"):
            out = run_tool(
                "oci-image-tool", "validate", "--type", "image", "--ref", f"name={tag}", layout
            )
            assert "Validation succeeded" in out


def test_skopeo_reads_the_oci_outputs(outputs: Outputs) -> None:
    """skopeo sees the build's digest, env and cmd in the OCI tarball and the layout dir."""
    for ref in (f"oci-archive:{outputs.oci_tar}:1", f"oci:{outputs.oci_dir}:latest"):
        info = json.loads(run_tool("skopeo", "inspect", ref))
        assert info["Digest"] == outputs.digest
        assert "MODE=prod" in info["Env"]
        config = json.loads(run_tool("skopeo", "inspect", "--config", ref))
        assert config["config"]["Cmd"] == ["/bin/sh", "/app/run.sh"]
        assert config["config"]["WorkingDir"] == "/app"


def test_umoci_tree_matches_the_local_output(outputs: Outputs) -> None:
    """umoci's unpack of the OCI outputs and the type=local rootfs hold the same tree."""
    _check_tree(outputs.local)
    for oci in (outputs.oci_tar, outputs.oci_dir):
        rootfs = unpack(oci, "1")
        _check_tree(rootfs)
        assert tree(rootfs) == tree(outputs.local)
    st = (outputs.local / "home/app/secret.txt").stat()
    assert (st.st_uid, st.st_gid) == (1000, 1000)


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[list[str]]:
    # podman refuses a runroot longer than 50 characters, which pytest's tmp_path exceeds
    runroot = Path(tempfile.mkdtemp(prefix="lb-podman-", dir="/tmp"))
    try:
        yield [
            "--root", str(tmp_path / "podman-root"), "--runroot", str(runroot),
            "--storage-driver", "vfs", "--events-backend", "none",
        ]  # fmt: skip
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


def test_podman_loads_the_docker_output(outputs: Outputs, podman: list[str]) -> None:
    """podman loads the type=docker tarball under both tags with the build's config, and
    skopeo reads its docker-archive manifest.json side."""
    out = run_tool("podman", *podman, "load", "-i", outputs.docker_tar)
    assert "app:1" in out
    images = run_tool("podman", *podman, "images", "--format", "{{.Repository}}:{{.Tag}}")
    # with two tags podman reads the manifest.json side (localhost/...); with one, index.json
    names = {
        n.removeprefix("localhost/").removeprefix("docker.io/library/") for n in images.split()
    }
    assert {"app:1", "app:latest"} <= names
    config = json.loads(run_tool("podman", *podman, "image", "inspect", "app:1"))[0]
    assert config["Config"]["Cmd"] == ["/bin/sh", "/app/run.sh"]
    assert "sha256:" + config["Id"] == outputs.lb.inspect("app:1")["ConfigDigest"]
    info = json.loads(run_tool("skopeo", "inspect", f"docker-archive:{outputs.docker_tar}"))
    assert "MODE=prod" in info["Env"]


def test_iidfile_and_metadata_file(outputs: Outputs) -> None:
    """--iidfile holds the manifest digest; --metadata-file holds digest, config digest, names
    and the descriptor, as buildx names the keys."""
    assert outputs.iidfile.read_text().strip() == outputs.digest
    meta = json.loads(outputs.metadata.read_text())
    assert meta["containerimage.digest"] == outputs.digest
    config = outputs.lb.inspect("app:1")["ConfigDigest"]
    assert meta["containerimage.config.digest"] == config
    assert set(meta["image.name"].split(",")) == {"app:1", "app:latest"}
    desc = meta["containerimage.descriptor"]
    assert desc["digest"] == outputs.digest
    assert desc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


def test_output_notes_go_to_stderr(outputs: Outputs) -> None:
    """Progress and output notes go to stderr; stdout of a plain build stays empty."""
    assert outputs.stdout == ""
    assert "OCI tarball written" in outputs.stderr


def test_quiet_prints_only_the_digest(lb: Layerbuild, tmp_path: Path) -> None:
    """-q prints exactly the image digest on stdout, nothing else."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nLABEL q=1\n"})
    proc = lb.ok("build", "-q", "-t", "q:1", ctx)
    assert proc.stdout == lb.inspect("q:1")["Digest"] + "\n"
    assert proc.stdout.startswith("sha256:") and len(proc.stdout.strip()) == 71


@pytest.mark.parametrize("which", ["oci_tar", "oci_dir", "docker_tar"])
def test_each_output_loads_back(
    outputs: Outputs, new_store_for_load: Layerbuild, which: str
) -> None:
    """`layerbuild load` of each output into an empty store gives the same image digest, under
    the build's tags."""
    path = getattr(outputs, which)
    proc = new_store_for_load.ok("load", path)
    assert outputs.digest in proc.stdout
    names = new_store_for_load.image_names()
    assert {"app:1", "app:latest"} <= names
    assert new_store_for_load.inspect("app:1")["Digest"] == outputs.digest


@pytest.fixture
def new_store_for_load(tmp_path: Path) -> Layerbuild:
    return Layerbuild(tmp_path / "empty-store")


def test_bad_output_spec_is_refused_before_building(lb: Layerbuild, tmp_path: Path) -> None:
    """A malformed --output fails with the accepted forms and tags nothing."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\n"})
    proc = lb("build", "-t", "bad:1", "-o", "type=zip,dest=x", ctx)
    assert proc.returncode != 0
    assert "type=oci,dest=" in proc.stderr
    assert "bad:1" not in lb.image_names()


def test_oci_tar_to_stdout(lb: Layerbuild, tmp_path: Path) -> None:
    """dest=- streams the OCI tarball to stdout (binary, readable by tarfile)."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nLABEL s=1\n"})
    proc = subprocess.run(
        [sys.executable, "-m", "layerbuild", "--root", str(lb.store), "build", "-t", "s:1",
         "--progress", "quiet", "-o", "type=oci,dest=-", str(ctx)],
        capture_output=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    (tmp_path / "stdout.tar").write_bytes(proc.stdout)
    assert (
        OciImage(tmp_path / "stdout.tar").index()["manifests"][0]["digest"]
        == (lb.inspect("s:1")["Digest"])
    )


def test_unwritable_iidfile_is_an_error_not_a_traceback(lb: Layerbuild, tmp_path: Path) -> None:
    """--iidfile in a directory that does not exist fails with a message naming the path."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\n"})
    proc = lb("build", "-t", "i:1", "--iidfile", tmp_path / "no/such/dir/iid", ctx)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "no/such/dir/iid" in proc.stderr
