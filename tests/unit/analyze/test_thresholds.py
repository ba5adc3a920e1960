"""analyze --ci: dive's rules and defaults, go-humanize byte counts, the pyproject table."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from layerbuild.analyze.thresholds import evaluate, from_pyproject, parse_bytes, validate
from layerbuild.errors import ThresholdSpecError
from layerbuild.image.efficiency import Efficiency


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20MB", 20_000_000),
        ("20mb", 20_000_000),
        ("20M", 20_000_000),
        ("20MiB", 20 * 1024**2),
        ("1.5 GiB", int(1.5 * 1024**3)),
        ("512", 512),
        ("1,000 kB", 1_000_000),
        ("7B", 7),
    ],
)
def test_byte_counts_read_as_dive_reads_them(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["MB", "20 parsecs", "-1MB", "1e6"])
def test_bad_byte_counts_are_refused(text: str) -> None:
    with pytest.raises(ThresholdSpecError):
        parse_bytes(text)


def _rules(values: dict[str, str], eff: Efficiency) -> dict[str, bool | None]:
    return {r.rule: r.passed for r in evaluate(values, eff)}


def test_defaults_are_dives() -> None:
    good = Efficiency(0.95, 10**9, 10**10, 10**10)  # 10% of user bytes wasted: not above 0.1
    assert _rules({}, good) == {
        "lowest-efficiency": True,
        "highest-wasted-bytes": None,  # disabled by default
        "highest-user-wasted-percent": True,
    }
    poor = Efficiency(0.89, 10**9 + 1, 10**10, 10**10)
    assert _rules({}, poor)["lowest-efficiency"] is False
    assert _rules({}, poor)["highest-user-wasted-percent"] is False


def test_each_rule_fails_only_past_its_limit() -> None:
    eff = Efficiency(0.5, 1_000_000, 3_000_000, 2_000_000)
    values = {
        "lowest-efficiency": "0.5",
        "highest-wasted-bytes": "1MB",
        "highest-user-wasted-percent": "0.5",
    }
    assert set(_rules(values, eff).values()) == {True}
    stricter = {
        "lowest-efficiency": "0.51",
        "highest-wasted-bytes": "999999",
        "highest-user-wasted-percent": "0.49",
    }
    assert set(_rules(stricter, eff).values()) == {False}


def test_rules_can_be_turned_off() -> None:
    eff = Efficiency(0.0, 10, 10, 0)
    assert math.isinf(eff.user_wasted_percent)
    values = dict.fromkeys(["lowest-efficiency", "highest-user-wasted-percent"], "off")
    assert set(_rules(values, eff).values()) == {None}


def test_bad_values_are_refused_before_analysis() -> None:
    with pytest.raises(ThresholdSpecError, match="outside 0-1"):
        validate({"lowest-efficiency": "95"})
    with pytest.raises(ThresholdSpecError, match="not a number"):
        validate({"highest-user-wasted-percent": "ten"})
    validate({"highest-wasted-bytes": "disabled", "lowest-efficiency": "0.9"})


def test_the_pyproject_table(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[project]\nname = "x"\n\n[tool.layerbuild.analyze]\n'
        'lowest-efficiency = 0.95\nhighest-wasted-bytes = "20MB"\n'
        "highest-user-wasted-percent = false\n"
    )
    assert from_pyproject(path, required=True) == {
        "lowest-efficiency": "0.95",
        "highest-wasted-bytes": "20MB",
        "highest-user-wasted-percent": "disabled",
    }


def test_a_pyproject_without_the_table_or_file(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    assert from_pyproject(path, required=False) == {}
    with pytest.raises(ThresholdSpecError, match="no such file"):
        from_pyproject(path, required=True)
    path.write_text('[project]\nname = "x"\n')
    assert from_pyproject(path, required=True) == {}


def test_a_pyproject_with_an_unknown_key_or_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.layerbuild.analyze]\nlowestEfficiency = 0.9\n")
    with pytest.raises(ThresholdSpecError, match="unknown key 'lowestEfficiency'"):
        from_pyproject(path, required=True)
    path.write_text("[tool\n")
    with pytest.raises(ThresholdSpecError, match="not valid TOML"):
        from_pyproject(path, required=False)
