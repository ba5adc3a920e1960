"""`layerbuild diff A B`: two real builds of a step that is not reproducible, and two images
layerbuild did not build (OCI layouts written here with tarfile and json), each checked
against a plain unpack-and-compare: umoci unpacks both root filesystems and Python compares
them file by file (type, content, mode, owner, link target, xattrs, mtime)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Layerbuild, make_context, run_tool, unpack

pytestmark = [pytest.mark.root, pytest.mark.overlay]

STAMP = (
    "FROM busybox\n"
    "RUN echo hi > /hello\n"
    "RUN od -An -N8 -tx8 /dev/urandom > /stamp\n"
    "RUN echo done > /done\n"
    'CMD ["sh"]\n'
)


def _diff(lb: Layerbuild, a: str | Path, b: str | Path) -> tuple[int, dict[str, Any]]:
    proc = lb("diff", a, b, "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    result = json.loads(proc.stdout)
    assert isinstance(result, dict)
    return proc.returncode, result


def _state(path: Path) -> tuple[Any, ...]:
    st = os.lstat(path)
    if stat.S_ISREG(st.st_mode):
        what: Any = hashlib.sha256(path.read_bytes()).hexdigest()
    elif stat.S_ISLNK(st.st_mode):
        what = os.readlink(path)
    else:
        what = None
    xattrs = sorted((k, os.getxattr(path, k, follow_symlinks=False))
                    for k in os.listxattr(path, follow_symlinks=False))  # fmt: skip
    kind = stat.S_IFMT(st.st_mode)
    mtime = None if stat.S_ISLNK(st.st_mode) else int(st.st_mtime)
    return kind, what, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, xattrs, mtime


def _unpacked(root: Path) -> dict[str, tuple[Any, ...]]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(dirpath, name)
            out["/" + str(path.relative_to(root))] = _state(path)
    return out


def unpack_and_compare(a: Path, b: Path) -> dict[str, str]:
    """path -> added | removed | changed | mtime-only, from the two umoci-unpacked rootfs."""
    ta, tb = _unpacked(a), _unpacked(b)
    out = {}
    for path in ta.keys() | tb.keys():
        x, y = ta.get(path), tb.get(path)
        if x == y:
            continue
        if x is None or y is None:
            out[path] = "added" if x is None else "removed"
        else:
            out[path] = "mtime-only" if x[:-1] == y[:-1] else "changed"
    return out


def _files(result: dict[str, Any]) -> dict[str, str]:
    return {f["path"]: f["status"] for f in result["files"]}


def test_a_step_that_is_not_reproducible_is_named_with_its_file(
    lb: Layerbuild, tmp_path: Path
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": STAMP})
    first = lb.build_oci(ctx, tag="stamp:1")
    time.sleep(1.1)  # the second build in another second: its layers get other mtimes
    second = lb.build_oci(ctx, "--no-cache", tag="stamp:2")

    code, result = _diff(lb, "stamp:1", "stamp:2")
    assert code == 1 and result["identical"] is False
    by_step = {p["a"]["created_by"]: p for p in result["layers"]}
    stamp = by_step["RUN od -An -N8 -tx8 /dev/urandom > /stamp"]
    assert stamp["verdict"] == "not reproducible"
    (changed,) = [f for f in stamp["files"] if f["status"] == "changed"]
    assert changed["path"] == "/stamp" and "content" in changed["what"]
    assert by_step["RUN echo done > /done"]["verdict"] == "parent"
    # /hello only got another mtime (a second later, or not): never called not reproducible
    assert by_step["RUN echo hi > /hello"]["verdict"] in ("same", "mtime-only")

    text = lb("diff", "stamp:1", "stamp:2")
    assert text.returncode == 1
    assert "≠ step 3 `RUN od -An -N8 -tx8 /dev/urandom > /stamp`" in text.stdout
    assert "not reproducible:" in text.stdout
    assert "changed    /stamp  content " in text.stdout

    # the final filesystems, against umoci's unpacking of both images
    expected = unpack_and_compare(unpack(first, "1"), unpack(second, "2"))
    assert _files(result) == expected
    assert expected["/stamp"] == "changed"


def test_identical_images_exit_0_from_the_store_and_from_a_tarball(
    lb: Layerbuild, tmp_path: Path
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": STAMP})
    out = lb.build_oci(ctx, tag="same:1")
    code, result = _diff(lb, "same:1", out)
    assert (code, result["identical"], result["files"]) == (0, True, [])
    assert all(p["verdict"] == "same" for p in result["layers"])
    text = lb.ok("diff", out, "same:1")
    assert text.stdout.rstrip().endswith("identical")


def test_an_env_change_is_the_input_that_differs(lb: Layerbuild, tmp_path: Path) -> None:
    epoch = {"SOURCE_DATE_EPOCH": "1700000000"}  # mtimes clamped: only real changes remain
    for n in (1, 2):
        text = f"FROM busybox\nENV A={n}\nRUN echo $A > /a\nRUN echo same > /b\n"
        ctx = make_context(tmp_path / str(n), {"Dockerfile": text})
        lb.build(ctx, "-t", f"env:{n}", env=epoch)
    code, result = _diff(lb, "env:1", "env:2")
    assert code == 1
    assert [(c["field"], c["a"], c["b"]) for c in result["config"]] == [("config.Env.A", "1", "2")]
    run_a, run_b = result["layers"][1:]
    assert run_a["verdict"] == "parent"
    assert run_a["reason"] == "an earlier step differs: `ENV A=1` / `ENV A=2`"
    assert [(f["path"], f["status"]) for f in run_a["files"]] == [("/a", "changed")]
    assert run_b["verdict"] == "same"  # the same file with the same clamped mtime
    assert _files(result) == {"/a": "changed"}


def test_usage_errors_exit_2(lb: Layerbuild) -> None:
    proc = lb("diff", "only-one")
    assert proc.returncode == 2
    assert "Missing argument 'B'" in proc.stderr


# --- images layerbuild did not build -------------------------------------------------------

Entry = tuple[tarfile.TarInfo, bytes]


def _entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **kw: Any) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data)
    info.mode = kw.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o644)
    info.mtime = kw.pop("mtime", 1_700_000_000)
    for key, value in kw.items():
        setattr(info, key, value)
    return info, data


def _layer(entries: list[Entry]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data else None)
    return raw.getvalue()


def _write_blob(blobs: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return f"sha256:{digest}"


def write_layout(out: Path, layers: list[list[Entry]], config: dict[str, Any]) -> Path:
    """An OCI layout of one image tagged `1`, written with tarfile, gzip and json only."""
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    tars = [_layer(entries) for entries in layers]
    descs = []
    for raw in tars:
        blob = gzip.compress(raw, mtime=0)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": _write_blob(blobs, blob), "size": len(blob)})  # fmt: skip
    full = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars]},
        "history": [{"created_by": f"step {i}"} for i in range(len(tars))],
    }  # fmt: skip
    cfg = json.dumps(full).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": _write_blob(blobs, cfg), "size": len(cfg)},
        "layers": descs,
    }).encode()  # fmt: skip
    index = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": _write_blob(blobs, manifest), "size": len(manifest),
                       "annotations": {"org.opencontainers.image.ref.name": "1"}}],
    }  # fmt: skip
    (out / "index.json").write_text(json.dumps(index))
    (out / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return out


BASE_LAYER = [
    _entry("etc", tarfile.DIRTYPE),
    _entry("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n"),
    _entry("bin", tarfile.DIRTYPE),
    _entry("bin/tool", data=b"#!/bin/sh\necho tool\n", mode=0o755),
    _entry("data", tarfile.DIRTYPE),
    _entry("data/big", data=b"x" * 5000),
    _entry("data/gone", data=b"bye"),
    _entry("data/link", tarfile.SYMTYPE, linkname="big"),
]


def _app_layer(second: bool) -> list[Entry]:
    if not second:
        return [
            _entry("app", tarfile.DIRTYPE),
            _entry("app/conf", data=b"a=1\n"),
            _entry("app/run", data=b"run\n", mode=0o644),
            _entry("app/owned", data=b"o\n"),
            _entry("app/tagged", data=b"t\n", pax_headers={"SCHILY.xattr.user.tag": "one"}),
            _entry("app/touched", data=b"same\n", mtime=1_700_000_000),
        ]
    return [
        _entry("app", tarfile.DIRTYPE),
        _entry("app/conf", data=b"a=22\n"),
        _entry("app/run", data=b"run\n", mode=0o755),
        _entry("app/owned", data=b"o\n", uid=1000, gid=1000),
        _entry("app/tagged", data=b"t\n", pax_headers={"SCHILY.xattr.user.tag": "two"}),
        _entry("app/touched", data=b"same\n", mtime=1_700_000_500),
        _entry("app/new", data=b"n" * 300),
        _entry("data/link", tarfile.SYMTYPE, linkname="gone"),
        _entry("data/.wh.gone"),
    ]


def test_two_images_layerbuild_did_not_build(lb: Layerbuild, tmp_path: Path) -> None:
    config_a = {"Env": ["PATH=/bin", "MODE=dev"], "Cmd": ["/bin/tool"], "User": "root",
                "Labels": {"v": "1"}, "WorkingDir": "/"}  # fmt: skip
    config_b = {"Env": ["PATH=/bin", "MODE=prod"], "Entrypoint": ["/bin/tool"],
                "User": "1000:1000", "Labels": {"v": "2"}, "WorkingDir": "/app",
                "ExposedPorts": {"8080/tcp": {}}}  # fmt: skip
    a = write_layout(tmp_path / "a", [BASE_LAYER, _app_layer(False)], config_a)
    b = write_layout(tmp_path / "b", [BASE_LAYER, _app_layer(True)], config_b)
    assert json.loads(run_tool("skopeo", "inspect", f"oci:{a}:1"))["Layers"]  # a real layout

    code, result = _diff(lb, a, b)
    assert code == 1
    assert {c["field"]: (c["a"], c["b"]) for c in result["config"]} == {
        "config.Cmd": (["/bin/tool"], None),
        "config.Entrypoint": (None, ["/bin/tool"]),
        "config.ExposedPorts": (None, ["8080/tcp"]),
        "config.User": ("root", "1000:1000"),
        "config.WorkingDir": ("/", "/app"),
        "config.Env.MODE": ("dev", "prod"),
        "config.Labels.v": ("1", "2"),
    }
    base, app = result["layers"]
    assert base["verdict"] == "same"
    assert app["verdict"] == "not reproducible"  # same text, same parent: nothing else to say
    files = {f["path"]: f for f in result["files"]}
    assert {p: (f["status"], f["what"]) for p, f in files.items()} == {
        "/app/conf": ("changed", ["content"]),
        "/app/run": ("changed", ["mode"]),
        "/app/owned": ("changed", ["owner"]),
        "/app/tagged": ("changed", ["xattrs"]),
        "/app/touched": ("mtime-only", ["mtime"]),
        "/app/new": ("added", []),
        "/data/gone": ("removed", []),
        "/data/link": ("changed", ["link"]),
    }
    # biggest first, mtime-only last
    assert [f["path"] for f in result["files"]][:2] == ["/app/new", "/app/conf"]
    assert result["files"][-1]["path"] == "/app/touched"
    assert files["/app/tagged"]["b"]["xattrs"] == {"user.tag": "two"}

    assert _files(result) == unpack_and_compare(unpack(a, "1"), unpack(b, "1"))

    # the same pair as an OCI tarball: the same answer
    tarball = tmp_path / "b.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(b, arcname=".")
    assert _diff(lb, a, tarball)[1]["files"] == result["files"]


def test_builds_of_the_history_by_id_and_by_count(lb: Layerbuild, tmp_path: Path) -> None:
    """`diff ^1 ^0` compares the last two builds of ./Dockerfile; an id prefix from `builds
    ls` names a build too; a build that left no image is an error that says so."""
    ctx = make_context(tmp_path, {"Dockerfile": STAMP})
    lb.build(ctx, "-t", "stamp:1")
    lb.build(ctx, "--no-cache", "-t", "stamp:2")
    proc = lb("diff", "^1", "^0", "--format", "json", cwd=ctx)
    assert proc.returncode == 1, proc.stderr
    by_step = {p["a"]["created_by"]: p for p in json.loads(proc.stdout)["layers"]}
    assert by_step["RUN od -An -N8 -tx8 /dev/urandom > /stamp"]["verdict"] == "not reproducible"

    listed = json.loads(lb("builds", "ls", "--format", "json").stdout)
    newest, previous = (str(b["id"]) for b in listed[:2])
    same = lb("diff", previous[:8], "stamp:1", "--format", "json")
    assert same.returncode == 0, same.stderr
    assert lb("diff", newest[:8], "stamp:2").returncode == 0

    (ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    assert lb("build", ctx).returncode != 0
    failed = lb("diff", "^0", "stamp:1", cwd=ctx)
    assert failed.returncode != 0 and "left no image" in failed.stderr
