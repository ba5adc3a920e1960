"""`build --dry-run` through the CLI: its verdicts are those of the build that follows, step for
step, on every cache rule tests/integration/test_cache.py, test_cache_links.py and
test_cache_quick.py check for `--report`; it writes nothing to the store but the stat cache;
`--dry-run=strict` gates on misses; a missed `COPY . .` says which file a .dockerignore line
would keep out."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cachecases import SIBLING_STAGES
from tests.support.cli import Layerbuild, make_context

DOCKERFILE = """\
FROM busybox
ARG V=1
COPY src/ /app/
RUN echo "v=$V" > /version && cat /app/a.txt > /copy
ENV DONE=yes
"""
FILES = {"Dockerfile": DOCKERFILE, "src/a.txt": "hello\n", "src/b.txt": "b\n", "other/x": "x\n"}
NOT_REPRODUCIBLE = (
    "the step before was rebuilt with a different result (its output is not reproducible)"
)
RANDOM_STAGE = (
    "FROM busybox AS gen\nRUN head -c 1000 /dev/urandom > /big\nFROM gen\nRUN md5sum /big > /sum\n"
)


def dry_run(lb: Layerbuild, ctx: Path, *args: str | Path) -> dict[str, Any]:
    """`build --dry-run` of `ctx`: its --report."""
    report = ctx.parent / f"dry-{time.monotonic_ns()}.json"
    lb.build(ctx, "--dry-run", "--report", report, *args)
    obj = json.loads(report.read_text())
    assert isinstance(obj, dict)
    return obj


def build(lb: Layerbuild, ctx: Path, *args: str | Path) -> list[dict[str, Any]]:
    """A real build of `ctx` as x:1: the steps of its --report."""
    report = ctx.parent / f"real-{time.monotonic_ns()}.json"
    lb.build(ctx, "-t", "x:1", "--report", report, *args)
    steps = json.loads(report.read_text())["steps"]
    assert isinstance(steps, list)
    return steps


def assert_dry_run_matches(
    lb: Layerbuild, ctx: Path, *args: str | Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A dry run, then the real build, with the same arguments: each step the dry run keyed
    has the build's verdict, key and reason; `unknown` only where the build missed."""
    dry = dry_run(lb, ctx, *args)
    assert dry["dry_run"] is True and dry["image"] is None
    started = build(lb, ctx, *args)
    steps = dry["steps"]
    # the build's report lists steps as they started: independent stages run at once (--jobs)
    by_step = {(s["stage"], s["index"]): s for s in started}
    assert len(by_step) == len(started)
    assert sorted(by_step) == sorted((s["stage"], s["index"]) for s in steps)
    real = [by_step[s["stage"], s["index"]] for s in steps]  # in the dry run's order
    for d, r in zip(steps, real, strict=True):
        where = f"{d['stage']} step {d['index']} {d['instruction']!r}: dry {d}, real {r}"
        assert d["cache"] in ("hit", "miss", "unknown"), where
        if d["cache"] == "unknown":
            assert r["cache"] == "miss", where
            continue
        assert d["cache"] == r["cache"], where
        if d["key"] is not None:  # keyed: the build's own key, and its reason for a miss
            assert (d["key"], d["reason"]) == (r["key"], r["reason"]), where
        else:  # after a missed step, whose result it cannot have
            assert d["cache"] == "miss", where
    return steps, real


def caches(steps: list[dict[str, Any]]) -> list[str]:
    return [s["cache"] for s in steps]


@pytest.fixture
def built(lb: Layerbuild, tmp_path: Path) -> Path:
    ctx = make_context(tmp_path, FILES)
    dry, real = assert_dry_run_matches(lb, ctx)  # an empty cache: all but FROM miss
    assert caches(dry) == ["hit"] + ["miss"] * 4
    return ctx


# -- the cache rules (test_cache.py) ---------------------------------------------------------


def test_unchanged_rebuild(lb: Layerbuild, built: Path) -> None:
    dry, _ = assert_dry_run_matches(lb, built)
    assert caches(dry) == ["hit"] * 5


def test_touched_mtime(lb: Layerbuild, built: Path) -> None:
    future = time.time() + 100
    os.utime(built / "src" / "a.txt", (future, future))
    dry, _ = assert_dry_run_matches(lb, built)
    assert caches(dry) == ["hit"] * 5


def test_ignored_or_unread_file_changed(lb: Layerbuild, built: Path) -> None:
    (built / ".dockerignore").write_text("src/b.txt\n")
    dry, _ = assert_dry_run_matches(lb, built)
    assert dry[2]["reason"] == "/app/b.txt removed"
    (built / "src" / "b.txt").write_text("ignored, changed\n")
    (built / "other" / "x").write_text("read by no step\n")
    dry, _ = assert_dry_run_matches(lb, built)
    assert caches(dry) == ["hit"] * 5


@pytest.mark.parametrize("change", ["byte", "mode", "bytes-mtime-put-back"])
def test_a_changed_file(lb: Layerbuild, built: Path, change: str) -> None:
    path = built / "src" / "a.txt"
    if change == "byte":
        path.write_text("hellO\n")
    elif change == "mode":
        path.chmod(0o755)
    else:
        before = path.stat()
        time.sleep(0.01)
        path.write_text("jello\n")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    dry, _ = assert_dry_run_matches(lb, built)
    assert caches(dry) == ["hit", "hit", "miss", "miss", "miss"]
    assert [s["reason"] for s in dry[2:]] == ["/app/a.txt changed"] + ["parent step missed"] * 2


def test_symlink_target_changed(lb: Layerbuild, built: Path) -> None:
    (built / "src" / "link").symlink_to("a.txt")
    assert_dry_run_matches(lb, built)
    (built / "src" / "link").unlink()
    (built / "src" / "link").symlink_to("b.txt")
    dry, _ = assert_dry_run_matches(lb, built)
    assert dry[2]["reason"] == "/app/link changed"


def test_build_arg(lb: Layerbuild, built: Path) -> None:
    dry, _ = assert_dry_run_matches(lb, built, "--build-arg", "V=2")
    assert caches(dry) == ["hit", "hit", "hit", "miss", "miss"]
    assert dry[3]["reason"] == "build arg V changed"


def test_earlier_step_changed(lb: Layerbuild, built: Path) -> None:
    (built / "Dockerfile").write_text(DOCKERFILE.replace("ARG V=1", "ARG V=1\nENV E=1"))
    dry, _ = assert_dry_run_matches(lb, built)
    assert caches(dry) == ["hit", "hit", "miss", "miss", "miss", "miss"]


def test_sibling_stage_unchanged(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, SIBLING_STAGES)
    build(lb, ctx)
    (ctx / "a" / "f").write_text("A\n")
    dry, _ = assert_dry_run_matches(lb, ctx)
    assert [(s["stage"], s["cache"]) for s in dry] == [
        ("a", "hit"),
        ("a", "miss"),
        ("a", "miss"),
        ("b", "hit"),
        ("b", "hit"),
        ("b", "hit"),
        ("stage-2", "hit"),
        ("stage-2", "hit"),  # b is cached: its files are known
        ("stage-2", "unknown"),  # a would run again: only its files tell
    ]
    assert dry[8]["reason"] == "reads stage a, which would be rebuilt"


def test_a_stage_from_a_changed_stage(lb: Layerbuild, tmp_path: Path) -> None:
    """FROM a stage whose keys change: its root key is that stage's last key, so its FROM
    and every step after it miss."""
    dockerfile = "FROM busybox AS gen\nCOPY a /a\nFROM gen\nENV B=1\nRUN cat /a > /b\n"
    ctx = make_context(tmp_path, {"Dockerfile": dockerfile, "a": "a\n"})
    build(lb, ctx)
    (ctx / "a").write_text("A\n")
    dry, _ = assert_dry_run_matches(lb, ctx)
    assert caches(dry) == ["hit", "miss", "miss", "miss", "miss"]
    assert dry[2]["reason"] == "stage gen would be rebuilt with new keys"
    assert dry[4]["reason"] == "parent step missed"


DEP = (
    "FROM busybox AS dep\nRUN echo dep > /d\n"
    "FROM busybox\nCOPY --from=dep /d /d\nRUN cat /d > /e\n"
)


def test_no_cache(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": DEP})
    build(lb, ctx)
    dry, _ = assert_dry_run_matches(lb, ctx, "--no-cache")
    assert caches(dry) == ["hit", "miss", "hit", "miss", "miss"]
    assert all(s["reason"] == "cache disabled (--no-cache)" for s in dry if s["index"] > 1)


def test_no_cache_filter_on_a_stage_read_by_copy_from(lb: Layerbuild, tmp_path: Path) -> None:
    """Where a dry run cannot know: dep runs again, and whether it gives the same /d decides
    the COPY --from (here it does, and the build hits: `unknown` said so beforehand)."""
    ctx = make_context(tmp_path, {"Dockerfile": DEP})
    build(lb, ctx)
    dry = dry_run(lb, ctx, "--no-cache-filter", "dep")["steps"]
    assert [(s["stage"], s["cache"]) for s in dry] == [
        ("dep", "hit"),
        ("dep", "miss"),
        ("stage-1", "hit"),
        ("stage-1", "unknown"),
        ("stage-1", "unknown"),
    ]
    assert dry[1]["reason"] == "cache disabled for stage"
    real = build(lb, ctx, "--no-cache-filter", "dep")
    assert caches(real) == ["hit", "miss", "hit", "hit", "hit"]


# -- records linked to their parents (test_cache_links.py) ------------------------------------


def test_no_cache_filter_on_a_stage_with_a_random_step(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": RANDOM_STAGE})
    build(lb, ctx)
    dry, real = assert_dry_run_matches(lb, ctx, "--no-cache-filter", "gen")
    assert caches(dry) == ["hit", "miss", "hit", "unknown"]
    assert real[3]["reason"] == NOT_REPRODUCIBLE


def test_a_non_reproducible_step_rebuilt(lb: Layerbuild, tmp_path: Path) -> None:
    """A failed --no-cache build re-recorded step 2 with another /big: step 3's record, made
    on the old one, misses, and the dry run says so with the build's reason."""
    secret = tmp_path / "secret"
    secret.write_text("not empty\n")
    dockerfile = (
        "FROM busybox\nRUN head -c 1000 /dev/urandom > /big\n"
        "RUN --mount=type=secret,id=s,required=false sh -c '[ ! -s /run/secrets/s ]' "
        "&& md5sum /big > /sum\n"
    )
    ctx = make_context(tmp_path, {"Dockerfile": dockerfile})
    build(lb, ctx)
    failed = lb("build", "--no-cache", "--secret", f"id=s,src={secret}", ctx)
    assert failed.returncode != 0
    dry, _ = assert_dry_run_matches(lb, ctx)
    assert caches(dry) == ["hit", "hit", "miss"]
    assert dry[2]["reason"] == NOT_REPRODUCIBLE


def test_a_damaged_record(lb: Layerbuild, built: Path) -> None:
    """A dry run reads a damaged record as the build does, and leaves it for the build."""
    records = sorted((lb.store / "cache" / "keys").glob("*/*.*[0-9a-f]"))
    damaged = next(p for p in records if not p.name.endswith(".files"))
    damaged.write_text("{not json")
    dry = dry_run(lb, built)
    assert damaged.read_text() == "{not json"
    assert "miss" in caches(dry["steps"])
    assert_dry_run_matches(lb, built)


# -- the quick COPY keys (test_cache_quick.py) -------------------------------------------------

QUICK = "FROM busybox\nCOPY src/ /app/\nCOPY --from=busybox /bin/true /true\nRUN cat /app/a.txt\n"


@pytest.mark.parametrize("prefetch", ["1", "0"])
def test_quick_keys(
    lb: Layerbuild, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefetch: str
) -> None:
    monkeypatch.setenv("LAYERBUILD_PREFETCH", prefetch)
    ctx = make_context(tmp_path, {"Dockerfile": QUICK, "src/a.txt": "a\n", "src/sub/b": "b\n"})
    time.sleep(2.3)  # past the stat cache's racy margin: selections are recorded
    build(lb, ctx)
    dry, _ = assert_dry_run_matches(lb, ctx)
    assert caches(dry) == ["hit"] * 4
    os.utime(ctx / "src" / "a.txt", (time.time() + 100,) * 2)
    assert caches(assert_dry_run_matches(lb, ctx)[0]) == ["hit"] * 4
    (ctx / "src" / "sub" / "b").chmod(0o600)
    assert caches(assert_dry_run_matches(lb, ctx)[0]) == ["hit", "miss", "miss", "miss"]


def test_pruned_cache(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": QUICK, "src/a.txt": "a\n"})
    build(lb, ctx)
    lb.ok("rmi", "x:1")
    lb.ok("cache", "prune", "--all")
    dry, _ = assert_dry_run_matches(lb, ctx)
    assert caches(dry) == ["hit", "miss", "miss", "miss"]


# -- what a dry run writes, says and exits with -----------------------------------------------


def store_listing(store: Path) -> list[tuple[str, int, int]]:
    """Every file of the store with its size and mtime, the stat cache's database aside."""
    return sorted(
        (str(p.relative_to(store)), p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in store.rglob("*")
        if not p.is_dir() and not p.name.startswith("stat.db")
    )


def test_nothing_is_written_to_the_store(lb: Layerbuild, tmp_path: Path) -> None:
    """Misses of every kind: a COPY (its parent's file tree read), a WORKDIR that would make a
    directory, a disabled stage, a COPY --from a stage that would be rebuilt."""
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox AS a\nCOPY a/ /a/\nRUN cat /a/f > /o\n"
            "FROM busybox\nCOPY --from=a /o /o\n"
            "FROM busybox\nARG D=/new/dir\nWORKDIR $D\nCOPY . /ctx/\nENV X=1\n"
            "COPY --from=1 /o /o\n",
            "a/f": "a\n",
            "README.md": "r\n",
        },
    )
    build(lb, ctx)
    (ctx / "a" / "f").write_text("A\n")
    (ctx / "README.md").write_text("R\n")
    (ctx / "new.txt").write_text("new\n")
    shutil.rmtree(lb.store / "cache" / "entries")  # a cache a build would write again
    before = store_listing(lb.store)
    for args in (("--build-arg", "D=/other"), ("--no-cache-filter", "a")):
        dry = dry_run(lb, ctx, "-t", "other:1", *args)
        assert "miss" in caches(dry["steps"]) and "unknown" in caches(dry["steps"])
        assert store_listing(lb.store) == before
    assert "other" not in lb.ok("images").stdout


def test_strict_exit_status(lb: Layerbuild, built: Path) -> None:
    ok = lb("build", "--dry-run=strict", built)
    assert ok.returncode == 0, ok.stderr
    (built / "src" / "a.txt").write_text("changed\n")
    plain = lb("build", "--dry-run", built)
    assert plain.returncode == 0, plain.stderr
    strict = lb("build", "--dry-run=strict", built)
    assert strict.returncode == 1
    assert "/app/a.txt changed" in strict.stdout
    assert "--dry-run=strict: some steps would be built" in strict.stderr
    bad = lb("build", "--dry-run=loose", built)
    assert bad.returncode == 2 and "its only value is strict" in bad.stderr


def test_options_that_write_are_refused(lb: Layerbuild, built: Path, tmp_path: Path) -> None:
    for option in (
        f"--cache-to=type=local,dest={tmp_path}/c",
        f"--output=type=local,dest={tmp_path}/o",
    ):
        proc = lb("build", "--dry-run", option, built)
        assert proc.returncode == 2
        assert "cannot be used with --dry-run" in proc.stderr
    assert not (tmp_path / "c").exists() and not (tmp_path / "o").exists()
    noted = lb("build", "--dry-run", f"--cache-from=type=local,src={tmp_path}/none", built)
    assert noted.returncode == 0
    assert "--cache-from is not imported by a dry run" in noted.stderr


def test_dockerignore_hint(lb: Layerbuild, tmp_path: Path) -> None:
    dockerfile = (
        "FROM busybox\nCOPY app.sh /bin/app\nRUN true\nENV A=1\nCOPY . /src/\nRUN ls /src\n"
        "COPY notes.txt /notes\n"
    )
    files = {"Dockerfile": dockerfile, "app.sh": "a\n", "README.md": "r\n", "notes.txt": "n\n"}
    ctx = make_context(tmp_path, files)
    build(lb, ctx)
    (ctx / "README.md").write_text("changed\n")
    (ctx / "notes.txt").write_text("changed\n")
    proc = lb.ok("build", "--dry-run", ctx)
    hint = (
        "README.md changed; no step reads it except `COPY . /src/` at line 5; add it to "
        ".dockerignore to keep steps 5\u20137 cached"
    )
    assert hint in proc.stdout
    assert "notes.txt changed; no step" not in proc.stdout  # line 7 reads it
    steps = dry_run(lb, ctx)["steps"]
    assert steps[4]["details"] == ["/src/README.md changed", "/src/notes.txt changed", hint]
    assert steps[4]["reason"] == "/src/README.md changed"


def test_many_changed_files_are_counted(lb: Layerbuild, tmp_path: Path) -> None:
    files = {f"f/{n:02}": "x\n" for n in range(14)}
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nCOPY f/ /f/\n", **files})
    build(lb, ctx)
    for n in range(13):
        (ctx / "f" / f"{n:02}").write_text("y\n")
    details = dry_run(lb, ctx)["steps"][1]["details"]
    assert details == [f"/f/{n:02} changed" for n in range(10)] + ["and 3 more"]


def test_unknown_steps_and_the_report(lb: Layerbuild, tmp_path: Path) -> None:
    """A base image not in the store and ADD <url> need what only a build gets; a dry run
    asks no registry and downloads nothing."""
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox AS ok\nADD http://127.0.0.1:9/file /file\nRUN true\n"
            "FROM nothere.invalid/base:1\nENV A=1\nCOPY --from=ok /file /f\n",
        },
    )
    proc = lb("build", "--dry-run=strict", "--report", tmp_path / "r.json", ctx)
    assert proc.returncode == 1, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["dry_run"] is True and report["image"] is None
    steps = report["steps"]
    assert set(steps[0]) >= {"stage", "index", "line", "instruction", "cache", "key", "reason"}
    assert caches(steps) == ["hit", "unknown", "unknown", "unknown", "unknown", "unknown"]
    assert steps[1]["reason"] == "ADD http://127.0.0.1:9/file: a build would download it to key it"
    assert steps[2]["reason"] == "follows a step that cannot be keyed without running (line 2)"
    assert steps[3]["reason"] == (
        "image nothere.invalid/base:1 is not in the store: a build would pull it"
    )
    assert "unknown" in proc.stdout
