"""BuildReport: what a build's --report says of its cache imports and exports."""

from __future__ import annotations

from layerbuild.engine.events import CacheTransfer
from layerbuild.engine.report import BuildReport


def test_the_report_lists_imports_and_exports() -> None:
    report = BuildReport()
    report(CacheTransfer("import", "reg/app:cache", "failed", reason="cannot reach registry"))
    report(CacheTransfer("import", "/c", "imported", 3))
    report(CacheTransfer("export", "/d", "exported", 4))
    obj = report.to_json()
    failed = {"ref": "reg/app:cache", "status": "failed", "records": 0}
    assert obj["cache_imports"] == [
        failed | {"reason": "cannot reach registry"},
        {"ref": "/c", "status": "imported", "records": 3, "reason": ""},
    ]
    exported = {"ref": "/d", "status": "exported", "records": 4, "reason": ""}
    assert obj["cache_exports"] == [exported]
    assert BuildReport.from_json(obj).to_json()["cache_imports"] == obj["cache_imports"]
    assert list(obj)[:4] == ["image", "seconds", "summary", "steps"]  # the older fields stay


def test_check_warnings_are_reported_and_read_back() -> None:
    from layerbuild.engine.events import CheckWarned
    from layerbuild.engine.report import warnings_summary

    report = BuildReport()
    assert warnings_summary(report) == ""
    report(CheckWarned("StageNameCasing", "Stage name 'Build' should be lowercase", 3, "u"))
    expected = [{"rule": "StageNameCasing", "message": "Stage name 'Build' should be lowercase",
                 "line": 3, "url": "u"}]
    assert report.to_json()["warnings"] == expected
    assert BuildReport.from_json(report.to_json()).warnings == expected
    assert warnings_summary(report) == "1 warning found (build checks, see above)"


def test_each_step_s_start_is_noted_when_the_report_has_a_clock() -> None:
    from layerbuild.engine.events import StepDone, StepStarted

    times = iter([100.0, 100.5, 101.25])
    report = BuildReport(clock=lambda: next(times))  # made at 100.0: the build's start
    report(StepStarted(1, "a", 1, 2, 1, "FROM busybox AS a"))
    report(StepStarted(2, "b", 1, 2, 3, "FROM busybox AS b"))
    report(StepDone(2, 0.5))
    steps = report.to_json()["steps"]
    assert [s["start"] for s in steps] == [0.5, 1.25]
    assert [s.start for s in BuildReport.from_json(report.to_json()).steps] == [0.5, 1.25]


def test_a_report_without_starts_reads_back_and_writes_none() -> None:
    from layerbuild.engine.events import StepStarted

    report = BuildReport()  # no clock: a dry run, or a report written before starts were kept
    report(StepStarted(1, "a", 1, 1, 1, "FROM busybox"))
    (step,) = report.to_json()["steps"]
    assert "start" not in step
    assert BuildReport.from_json(report.to_json()).steps[0].start is None
