"""`layerbuild analyze`: what real builds waste, dive's numbers checked by hand, `--ci` through
the exit status, the pyproject table, and images read from an OCI layout or tarball in place.

Dive's numbers are computed here from its definition (layerbuild/image/efficiency.py's
docstring; dive/filetree/efficiency.go) with the base layer's bytes read by tarfile, not by
layerbuild: B is the sum of the busybox layer's tar header sizes (every entry of the base is a
leaf counted once, or a directory that holds entries and is not counted).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Layerbuild, OciImage, make_context

pytestmark = [pytest.mark.root, pytest.mark.overlay]

BIG = 10 * 1024 * 1024
TWO_RUNS = f"FROM busybox\nRUN head -c {BIG} /dev/zero > /big\nRUN rm /big\n"
ONE_RUN = f"FROM busybox\nRUN head -c {BIG} /dev/zero > /big && rm /big\n"


def _analyze(lb: Layerbuild, image: str | Path, *args: str) -> dict[str, Any]:
    result = json.loads(lb.ok("analyze", image, "--format", "json", *args).stdout)
    assert isinstance(result, dict)
    return result


def _base_bytes(busybox_layout: Path) -> int:
    return sum(m.size for m in OciImage(busybox_layout).layer_members(0))


def test_a_file_added_in_one_run_and_deleted_in_the_next_is_wasted(
    lb: Layerbuild, tmp_path: Path, busybox_layout: Path
) -> None:
    lb.build(make_context(tmp_path, {"Dockerfile": TWO_RUNS}), "-t", "waste:1")
    report = _analyze(lb, "waste:1")
    assert report["wasted_bytes"] == BIG
    (path,) = report["wasted_paths"]
    assert (path["path"], path["bytes"], path["how"]) == ("/big", BIG, "deleted")
    # history: 1 the base, 2 the first RUN, 3 the second (FROM adds no entry of its own)
    assert (path["added_by_layer"], path["removed_by_layer"]) == (1, 2)
    assert (path["added_by_step"], path["removed_by_step"]) == (2, 3)
    assert "one RUN" in path["hint"]
    assert [layer["wasted_bytes"] for layer in report["layers"]] == [0, BIG, 0]
    # by hand, dive: /big counts BIG (layer 1) and 0 (its whiteout, not a directory):
    # wasted = BIG; efficiency = (B + 0) / (B + BIG); user size = BIG + 0, so 100% wasted
    base = _base_bytes(busybox_layout)
    dive = report["dive"]
    assert dive["wasted_bytes"] == BIG
    assert dive["efficiency"] == pytest.approx(base / (base + BIG))
    assert (dive["user_size_bytes"], dive["user_wasted_percent"]) == (BIG, 1.0)

    failed = lb("analyze", "waste:1", "--ci", "--highest-wasted-bytes", "1MB")
    assert failed.returncode == 1, failed.stderr
    assert "FAIL highest-wasted-bytes 1MB" in failed.stdout
    assert "error: waste:1 fails 3 CI rule(s)" in failed.stderr


def test_the_same_file_made_and_deleted_in_one_run_passes(lb: Layerbuild, tmp_path: Path) -> None:
    lb.build(make_context(tmp_path, {"Dockerfile": ONE_RUN}), "-t", "once:1")
    proc = lb.ok("analyze", "once:1", "--ci", "--highest-wasted-bytes", "1MB")
    assert "PASS highest-wasted-bytes 1MB" in proc.stdout
    report = _analyze(lb, "once:1")
    assert (report["wasted_bytes"], report["dive"]["wasted_bytes"]) == (0, 0)
    assert report["dive"]["efficiency"] == 1.0


def test_rewritten_files_and_a_deleted_directory_against_dive(
    lb: Layerbuild, tmp_path: Path, busybox_layout: Path
) -> None:
    dockerfile = (
        "FROM busybox\n"
        "RUN mkdir /d && head -c 3000 /dev/zero > /d/a && head -c 5000 /dev/zero > /d/b\n"
        "RUN rm -rf /d\n"
        "RUN head -c 1000 /dev/zero > /etc/x\n"
        "RUN head -c 2000 /dev/zero > /etc/x\n"
    )
    lb.build(make_context(tmp_path, {"Dockerfile": dockerfile}), "-t", "mixed:1")
    report = _analyze(lb, "mixed:1")
    # ours: /d's 8000 bytes (deleted) and the first /etc/x, 1000 bytes (written again)
    assert report["wasted_bytes"] == 9000
    assert [(p["path"], p["bytes"], p["how"]) for p in report["wasted_paths"]] == [
        ("/d", 8000, "deleted"),
        ("/etc/x", 1000, "replaced"),
    ]
    assert "merge the two RUNs" in report["wasted_paths"][1]["hint"]
    # dive, by hand: layer 1 counts d/a 3000 and d/b 5000 (d holds them: not a leaf); the
    # whiteout of d in layer 2 counts what was below it, 8000, at /d, a path no other layer
    # counted: no inefficiency. /etc/x counts 1000 then 2000: sum 3000, smallest 1000, wasted
    # 3000 (both copies). Efficiency = (B + 8000 + 8000 + 1000) / (B + 8000 + 8000 + 3000).
    # User size: 8000 + 0 + 1000 + 2000 = 11000.
    base = _base_bytes(busybox_layout)
    dive = report["dive"]
    assert dive["wasted_bytes"] == 3000
    assert dive["efficiency"] == pytest.approx((base + 17000) / (base + 19000))
    assert dive["user_size_bytes"] == 11000
    assert dive["user_wasted_percent"] == pytest.approx(3000 / 11000)


def test_thresholds_from_the_pyproject_table(lb: Layerbuild, tmp_path: Path) -> None:
    lb.build(make_context(tmp_path, {"Dockerfile": TWO_RUNS}), "-t", "waste:1")
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        "[tool.layerbuild.analyze]\nlowest-efficiency = 0\n"
        'highest-user-wasted-percent = "disabled"\nhighest-wasted-bytes = "20MB"\n'
    )
    passed = lb("analyze", "waste:1", "--ci", cwd=project)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    # the command line wins over the table
    failed = lb("analyze", "waste:1", "--ci", "--highest-wasted-bytes", "10MB", cwd=project)
    assert failed.returncode == 1
    assert "FAIL highest-wasted-bytes 10MB" in failed.stdout
    bad = lb("analyze", "waste:1", "--ci", "--lowest-efficiency", "95")
    assert bad.returncode == 2 and "outside 0-1" in bad.stderr


def test_an_oci_layout_and_tarballs_are_read_in_place(lb: Layerbuild, tmp_path: Path) -> None:
    tarball = lb.build_oci(make_context(tmp_path, {"Dockerfile": TWO_RUNS}), tag="waste:1")
    layout = tmp_path / "layout"
    lb.ok("save", "waste:1", "--format", "oci-dir", "-o", layout)
    archive = tmp_path / "docker.tar"
    lb.ok("save", "waste:1", "--format", "docker-archive", "-o", archive)
    stored = _analyze(lb, "waste:1")
    empty = Layerbuild(tmp_path / "empty-store")
    for path in (tarball, layout, archive):
        report = _analyze(empty, path)
        assert report["wasted_bytes"] == BIG
        assert report["dive"] == stored["dive"]
        assert [p["path"] for p in report["wasted_paths"]] == ["/big"]
    assert not (tmp_path / "empty-store").exists()  # nothing was loaded into a store


def test_the_text_view_off_a_terminal_is_plain(lb: Layerbuild, tmp_path: Path) -> None:
    lb.build(make_context(tmp_path, {"Dockerfile": TWO_RUNS}), "-t", "waste:1")
    out = lb.ok("analyze", "waste:1").stdout
    assert "\x1b[" not in out
    assert "/big (1 file): written by layer 1 (step 2 `RUN head -c" in out
    assert "fix: do both in one RUN" in out
    assert "xxxxxxxxxxxxxxxxxxxx" in out  # layer 1's bar: all of it wasted
    assert "Dive's numbers: efficiency" in out


def test_a_directory_emptied_and_made_again_in_one_run_hides_its_old_files(
    lb: Layerbuild, tmp_path: Path
) -> None:
    dockerfile = (
        "FROM busybox\n"
        "RUN mkdir -p /srv/d && head -c 6000 /dev/zero > /srv/d/old\n"
        "RUN rm -rf /srv/d && mkdir /srv/d && echo hi > /srv/d/new\n"
    )
    lb.build(make_context(tmp_path, {"Dockerfile": dockerfile}), "-t", "opaque:1")
    report = _analyze(lb, "opaque:1")
    # overlayfs marks the new /srv/d opaque: the layer hides every old entry below it
    assert [(p["path"], p["bytes"], p["how"]) for p in report["wasted_paths"]] == [
        ("/srv/d", 6000, "opaque")
    ]
    assert report["layers"][2]["deleted"] == 1
    # dive ignores opaque markers: old and new are each counted once, nothing is inefficient
    assert (report["dive"]["efficiency"], report["dive"]["wasted_bytes"]) == (1.0, 0)
