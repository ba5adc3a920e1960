"""Build checks through the CLI: every build prints BuildKit's warnings and counts them, the
report lists them, `build --check` only checks, and the `check=` options (directive, comment
above one instruction, BUILDKIT_DOCKERFILE_CHECK) skip rules or make warnings fatal."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import Layerbuild, make_context

STAGE_CASING = "WARN: StageNameCasing: Stage name 'Build' should be lowercase (line 1)"
JSON_ARGS = ("WARN: JSONArgsRecommended: JSON arguments recommended for CMD to prevent "
             "unintended behavior related to OS signals (line 3)")
WARNED = "FROM scratch AS Build\nCOPY a.txt /\nCMD run-me\n"
CLEAN = "FROM scratch AS build\nCOPY a.txt /\nCMD [\"run-me\"]\n"


def _context(tmp_path: Path, dockerfile: str) -> Path:
    return make_context(tmp_path, {"Dockerfile": dockerfile, "a.txt": "a"})


def test_build_prints_warnings_counts_them_and_reports_them(lb: Layerbuild,
                                                            tmp_path: Path) -> None:
    ctx = _context(tmp_path, WARNED)
    report = tmp_path / "report.json"
    proc = lb("build", "--progress", "plain", "--report", report, "-t", "warned:1", ctx)
    assert proc.returncode == 0, proc.stderr
    assert STAGE_CASING in proc.stderr
    assert JSON_ARGS in proc.stderr
    assert proc.stderr.rstrip().endswith("2 warnings found (build checks, see above)")
    assert json.loads(report.read_text())["warnings"] == [
        {"rule": "StageNameCasing", "message": "Stage name 'Build' should be lowercase",
         "line": 1, "url": "https://docs.docker.com/go/dockerfile/rule/stage-name-casing/"},
        {"rule": "JSONArgsRecommended",
         "message": "JSON arguments recommended for CMD to prevent unintended behavior related "
         "to OS signals",
         "line": 3, "url": "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/"},
    ]
    assert "warned:1" in lb.image_names()


def test_clean_build_has_no_warnings(lb: Layerbuild, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    proc = lb("build", "--progress", "plain", "--report", report, _context(tmp_path, CLEAN))
    assert proc.returncode == 0, proc.stderr
    assert "WARN:" not in proc.stderr
    assert "warning" not in proc.stderr
    assert json.loads(report.read_text())["warnings"] == []


def test_quiet_build_still_prints_warnings(lb: Layerbuild, tmp_path: Path) -> None:
    proc = lb("build", "-q", _context(tmp_path, WARNED))
    assert proc.returncode == 0, proc.stderr
    assert STAGE_CASING in proc.stderr
    assert proc.stdout.strip().startswith("sha256:")


def test_check_only_checks(lb: Layerbuild, tmp_path: Path) -> None:
    """--check prints the warnings of every stage, builds nothing and exits 1; 0 when clean."""
    before = lb.image_names()
    text = WARNED + "FROM scratch AS unused\nENV name value\n"
    proc = lb("build", "--check", "-t", "never:1", _context(tmp_path, text))
    assert proc.returncode == 1, proc.stderr
    assert STAGE_CASING in proc.stdout
    assert JSON_ARGS in proc.stdout
    # a stage the build would not reach is checked too
    assert ('WARN: LegacyKeyValueFormat: "ENV key=value" should be used instead of legacy '
            '"ENV key value" format (line 5)') in proc.stdout
    assert "Check complete, 3 warnings found." in proc.stdout
    assert lb.image_names() == before
    clean = lb("build", "--check", _context(tmp_path / "clean", CLEAN))
    assert clean.returncode == 0, clean.stderr
    assert "Check complete, no warnings found." in clean.stdout


def test_check_directive_skips_rules(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "# check=skip=StageNameCasing\n" + WARNED)
    proc = lb("build", "--check", ctx)
    assert proc.returncode == 1
    assert "StageNameCasing" not in proc.stdout
    assert "JSONArgsRecommended" in proc.stdout
    skip_all = lb("build", "--check", _context(tmp_path / "all", "# check=skip=all\n" + WARNED))
    assert skip_all.returncode == 0, skip_all.stdout


def test_comment_above_an_instruction_skips_there_only(lb: Layerbuild, tmp_path: Path) -> None:
    text = ("FROM scratch\nCOPY a.txt /\n# check=skip=JSONArgsRecommended\nCMD one\n"
            "FROM scratch\nCMD two\n")
    proc = lb("build", "--check", _context(tmp_path, text))
    assert proc.returncode == 1
    assert "(line 4)" not in proc.stdout
    assert "JSONArgsRecommended: JSON arguments recommended for CMD" in proc.stdout
    assert "(line 6)" in proc.stdout


def test_error_true_fails_the_build(lb: Layerbuild, tmp_path: Path) -> None:
    before = lb.image_names()
    ctx = _context(tmp_path, "# check=error=true\n" + CLEAN.replace("build", "Build"))
    proc = lb("build", "--progress", "plain", "-t", "strict:1", ctx)
    assert proc.returncode == 11, proc.stderr
    assert "WARN: StageNameCasing: Stage name 'Build' should be lowercase (line 2)" in proc.stderr
    assert "lint violation found for rules: StageNameCasing" in proc.stderr
    assert lb.image_names() == before


def test_build_arg_replaces_the_directive(lb: Layerbuild, tmp_path: Path) -> None:
    """BUILDKIT_DOCKERFILE_CHECK replaces `# check=` (as in BuildKit): skip=all wins over the
    file's error=true, and error=true from the build arg fails a file that says nothing."""
    strict = _context(tmp_path, "# check=error=true\n" + WARNED)
    proc = lb("build", "--progress", "plain", "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all",
              strict)
    assert proc.returncode == 0, proc.stderr
    assert "WARN:" not in proc.stderr
    assert "not consumed" not in proc.stderr  # the builder consumes it
    lax = _context(tmp_path / "lax", WARNED)
    failed = lb("build", "--progress", "plain", "--build-arg",
                "BUILDKIT_DOCKERFILE_CHECK=skip=JSONArgsRecommended;error=true", lax)
    assert failed.returncode == 11, failed.stderr
    assert "lint violation found for rules: StageNameCasing" in failed.stderr


def test_bad_check_option_is_a_dockerfile_error(lb: Layerbuild, tmp_path: Path) -> None:
    proc = lb("build", _context(tmp_path, "# check=skip-all\n" + CLEAN))
    assert proc.returncode == 2
    assert "invalid check option 'skip-all'" in proc.stderr


def test_undefined_var_knows_the_base_image_env(lb: Layerbuild, tmp_path: Path) -> None:
    """The base image's ENV (busybox's PATH, read from the store) counts as defined."""
    text = "FROM busybox\nENV PATH=$PATH:/opt/bin OTHER=$PAHT\n"
    proc = lb("build", "--check", _context(tmp_path, text))
    assert proc.returncode == 1
    assert ("WARN: UndefinedVar: Usage of undefined variable '$PAHT' (did you mean $PATH?) "
            "(line 2)") in proc.stdout
    assert "'$PATH'" not in proc.stdout


def test_copy_of_an_ignored_file_is_warned_before_it_fails(lb: Layerbuild,
                                                            tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": "FROM scratch\nCOPY secret.txt /\n",
                                  "secret.txt": "s", ".dockerignore": "secret.txt\n"})
    warning = ('WARN: CopyIgnoredFile: Attempting to Copy file "secret.txt" that is excluded by '
               ".dockerignore (line 2)")
    checked = lb("build", "--check", ctx)
    assert checked.returncode == 1
    assert warning in checked.stdout
    built = lb("build", "--progress", "plain", ctx)
    assert built.returncode == 3  # the COPY itself fails: its source is not in the context
    assert warning in built.stderr


def test_duplicate_stage_name_is_warned_by_check_and_fails_a_build(lb: Layerbuild,
                                                                   tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM scratch AS base\nCOPY a.txt /\nFROM scratch AS base\n")
    checked = lb("build", "--check", ctx)
    assert checked.returncode == 1, checked.stderr
    assert ('WARN: DuplicateStageName: Duplicate stage name "base", stage names should be '
            "unique (line 3)") in checked.stdout
    built = lb("build", ctx)
    assert built.returncode == 2
    assert "duplicate stage name 'base'" in built.stderr
    unique = lb("build", "--check", _context(tmp_path / "u", CLEAN))
    assert unique.returncode == 0, unique.stdout


def test_base_image_of_another_platform_is_warned(lb: Layerbuild, tmp_path: Path) -> None:
    """InvalidBaseImagePlatform: the base's platform read from the store, compared with the
    platform its stage builds for (the target, or FROM --platform)."""
    arm = lb("build", "--platform", "linux/arm64", "-t", "armonly:1",
             _context(tmp_path / "arm", "FROM scratch\nCOPY a.txt /\n"))
    assert arm.returncode == 0, arm.stderr
    warning = ('WARN: InvalidBaseImagePlatform: Base image armonly:1 was pulled with platform '
               '"linux/arm64", expected "linux/amd64" for current build (line 1)')
    ctx = _context(tmp_path, "FROM armonly:1\nCOPY a.txt /b.txt\n")
    checked = lb("build", "--check", ctx)
    assert checked.returncode == 1
    assert warning in checked.stdout
    built = lb("build", "--progress", "plain", ctx)
    assert built.returncode != 0  # a base of another platform is an error for the build
    assert warning in built.stderr
    for same in (("--platform", "linux/arm64"), ()):
        text = "FROM armonly:1\n" if same else "FROM --platform=linux/arm64 armonly:1 AS x_arm64\n"
        fine = lb("build", "--check", *same, _context(tmp_path / f"ok{len(same)}", text))
        assert fine.returncode == 0, fine.stdout
