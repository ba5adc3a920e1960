"""engine/buildrecord: a build's history record folded from the build's events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from layerbuild.digest import Digest
from layerbuild.engine import buildrecord
from layerbuild.engine.buildrecord import BuildRecorder, ended, header, shown_args
from layerbuild.engine.events import Log, StepDone, StepStarted
from layerbuild.engine.layerfiles import LayerFiles
from layerbuild.engine.options import BuildOptions
from layerbuild.engine.report import BuildReport
from layerbuild.errors import BuildError, ExitCode

LAYER = Digest("sha256:" + "a" * 64)


class Written:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.retained = 0

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def retain(self) -> list[str]:
        self.retained += 1
        return []


def _recorder(tmp_path: Path) -> tuple[BuildRecorder, BuildReport, Written]:
    options = BuildOptions(context=tmp_path, build_args={"API_TOKEN": "s3cret", "V": "1"})
    report, written = BuildReport(), Written()
    head = header("abc", options, 100.0, 1, "sha256:" + "d" * 64)
    recorder = BuildRecorder(head, report, written, sizes=lambda digest: 42)

    def emit(event: Any) -> None:
        report(event)
        recorder(event)

    recorder.start()
    emit(StepStarted(1, "s", 1, 2, 1, "FROM busybox"))
    emit(StepDone(1, 0.0, cached=True))
    emit(StepStarted(2, "s", 2, 2, 2, "RUN make"))
    emit(Log(2, "compiling\ndone"))
    files = LayerFiles(1, 0, 3, 1, 0, ("+ /out",))
    emit(StepDone(2, 1.5, LAYER, reason="no previous build of this step", files=files))
    return recorder, report, written


def test_the_header_hides_secret_looking_build_args(tmp_path: Path) -> None:
    head = header("abc", BuildOptions(context=tmp_path, secrets={"ca": tmp_path / "ca"}), 1.0,
                  7, None)
    assert head["dockerfile"] == str(tmp_path / "Dockerfile")
    assert head["secrets"] == ["ca"]
    assert shown_args({"API_TOKEN": "x", "GITHUB_TOKEN": "y", "TOKEN_FILE": "f", "V": "1"}) == {
        "API_TOKEN": buildrecord.HIDDEN,
        "GITHUB_TOKEN": buildrecord.HIDDEN,
        "TOKEN_FILE": "f",
        "V": "1",
    }


def test_running_after_each_step_that_ran_then_whole(tmp_path: Path) -> None:
    recorder, _, written = _recorder(tmp_path)
    # the start, and the step that ran; the cached FROM wrote nothing
    assert [r["status"] for r in written.records] == ["running", "running"]
    recorder.finish(None)
    record = written.records[-1]
    assert (record["status"], record["exit_code"], written.retained) == ("completed", 0, 1)
    assert record["build_args"] == {"API_TOKEN": buildrecord.HIDDEN, "V": "1"}
    run = record["steps"][1]
    assert (run["step_id"], run["layer_size"], run["files"]["paths"]) == (2, 42, ["+ /out"])
    assert record["logs"] == [{"step_id": 2, "lines": ["compiling", "done"], "dropped": 0}]
    assert "s3cret" not in str(record)


def test_how_a_build_ended() -> None:
    assert ended(None) == ("completed", 0, "")
    assert ended(KeyboardInterrupt()) == ("interrupted", ExitCode.INTERRUPTED, "interrupted")
    assert ended(BuildError("RUN failed")) == ("failed", ExitCode.BUILD, "RUN failed")
    assert ended(SystemExit(12)) == ("failed", 12, "")
    assert ended(OSError(28, "No space left on device"))[:2] == ("failed", ExitCode.HOST)


def test_step_output_is_bounded(tmp_path: Path) -> None:
    recorder, report, written = _recorder(tmp_path)
    for n in range(buildrecord.LOG_LINES + 50):
        recorder(Log(2, f"line {n} " + "x" * (buildrecord.LOG_LINE_CHARS + 10)))
    recorder.finish(None)
    log = written.records[-1]["logs"][0]
    assert len(log["lines"]) == buildrecord.LOG_LINES
    assert log["dropped"] == 52  # the two first lines and the 50 beyond the bound
    assert log["lines"][-1].startswith(f"line {buildrecord.LOG_LINES + 49} ")
    assert all(len(line) <= buildrecord.LOG_LINE_CHARS + 3 for line in log["lines"])


class Refusing(Written):
    def write(self, record: dict[str, Any]) -> None:
        if record["status"] == "running":
            raise OSError(28, "No space left on device")
        super().write(record)


def test_a_refused_running_record_never_fails_the_build(tmp_path: Path) -> None:
    report, written = BuildReport(), Refusing()
    options = BuildOptions(context=tmp_path)
    recorder = buildrecord.start_recording(options, report, written)
    recorder(StepStarted(1, "s", 1, 1, 1, "FROM busybox"))
    recorder(StepDone(1, 0.1))  # a step that ran: a checkpoint, refused
    recorder.finish(None)
    assert [r["status"] for r in written.records] == ["completed"]
    assert written.records[0]["dockerfile_digest"] is None  # no Dockerfile in tmp_path
