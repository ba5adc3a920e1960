"""`analyze --ci`: dive's three CI rules, their values and where they come from.

The rules and their defaults are dive's (cmd/dive/cli/internal/command/ci/rules.go,
options/ci_rules.go): lowest efficiency 0.9, highest user-wasted percent 0.1 (ratios from 0 to
1), highest wasted bytes disabled; a value of "disabled", "off", "false" or "" turns a rule off.
Byte counts are read as go-humanize reads them for dive: "20MB" is 20*1000^2, "20MiB" 20*1024^2.

Values come from the defaults, then the `[tool.layerbuild.analyze]` table of a pyproject.toml
(`--ci-config`, else ./pyproject.toml when it has that table), then the command line. Dive's
own `.dive-ci` is YAML; layerbuild depends on no YAML parser, so its table is TOML, with dive's
key names.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerbuild.errors import ThresholdSpecError
from layerbuild.image.efficiency import Efficiency

LOWEST_EFFICIENCY = "lowest-efficiency"
HIGHEST_WASTED_BYTES = "highest-wasted-bytes"
HIGHEST_USER_WASTED_PERCENT = "highest-user-wasted-percent"
RULES = (LOWEST_EFFICIENCY, HIGHEST_WASTED_BYTES, HIGHEST_USER_WASTED_PERCENT)
DEFAULTS = {LOWEST_EFFICIENCY: "0.9", HIGHEST_WASTED_BYTES: "disabled",
            HIGHEST_USER_WASTED_PERCENT: "0.1"}  # fmt: skip
TABLE = ("tool", "layerbuild", "analyze")

_DISABLED = {"", "disabled", "off", "false"}
_BYTES = re.compile(r"^\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1}
for _power, _letter in enumerate("kmgtpe", start=1):
    _UNITS[_letter] = _UNITS[_letter + "b"] = 1000**_power
    _UNITS[_letter + "i"] = _UNITS[_letter + "ib"] = 1024**_power


@dataclass(frozen=True)
class RuleResult:
    rule: str
    limit: str  # the value as given ("disabled" for a rule that is off)
    passed: bool | None  # None: disabled
    message: str


def parse_bytes(text: str) -> int:
    """go-humanize's ParseBytes: '20MB', '1.5 GiB', '512', '1,000 kB'."""
    match = _BYTES.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ThresholdSpecError(f"{text!r} is not a byte count (such as 20MB or 512KiB)")
    return int(float(match.group(1).replace(",", "")) * _UNITS[unit])


def _ratio(rule: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ThresholdSpecError(f"{rule}: {text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise ThresholdSpecError(f"{rule}: {text} is outside 0-1 (a ratio: 0.1 is 10%)")
    return value


def disabled(text: str) -> bool:
    return text.strip().lower() in _DISABLED


def validate(values: dict[str, str]) -> None:
    """Raise ThresholdSpecError for a value that no rule can use."""
    for rule, text in values.items():
        if disabled(text):
            continue
        if rule == HIGHEST_WASTED_BYTES:
            parse_bytes(text)
        else:
            _ratio(rule, text)


def from_pyproject(path: Path, *, required: bool) -> dict[str, str]:
    """The rule values of `path`'s [tool.layerbuild.analyze] table ({} if it has none)."""
    try:
        with path.open("rb") as f:
            data: Any = tomllib.load(f)
    except FileNotFoundError:
        if required:
            raise ThresholdSpecError(f"{path}: no such file") from None
        return {}
    except tomllib.TOMLDecodeError as e:
        raise ThresholdSpecError(f"{path}: not valid TOML: {e}") from e
    for key in TABLE:
        data = data.get(key, {}) if isinstance(data, dict) else {}
    if not isinstance(data, dict):
        raise ThresholdSpecError(f"{path}: [{'.'.join(TABLE)}] is not a table")
    unknown = sorted(set(data) - set(RULES))
    if unknown:
        raise ThresholdSpecError(
            f"{path}: [{'.'.join(TABLE)}]: unknown key {unknown[0]!r} (known: {', '.join(RULES)})"
        )
    return {key: _text(value) for key, value in data.items()}


def _text(value: object) -> str:
    if value is False:
        return "disabled"
    return str(value)


def evaluate(values: dict[str, str], eff: Efficiency) -> list[RuleResult]:
    """Each rule against dive's numbers of the image, as dive's CI evaluates it."""
    merged = {**DEFAULTS, **values}
    results = []
    for rule in RULES:
        text = merged[rule]
        if disabled(text):
            results.append(RuleResult(rule, "disabled", None, "rule disabled"))
        else:
            results.append(_evaluate(rule, text, eff))
    return results


def _evaluate(rule: str, text: str, eff: Efficiency) -> RuleResult:
    if rule == LOWEST_EFFICIENCY:
        limit = _ratio(rule, text)
        failed = limit > eff.score
        message = f"image efficiency is too low ({eff.score:.4f} < {limit})"
    elif rule == HIGHEST_WASTED_BYTES:
        most = parse_bytes(text)
        failed = eff.wasted_bytes > most
        message = f"too many bytes wasted ({eff.wasted_bytes} > {most})"
    else:
        limit = _ratio(rule, text)
        percent = eff.user_wasted_percent
        failed = percent > limit
        shown = "inf" if math.isinf(percent) else f"{percent:.4f}"
        message = f"too many bytes wasted for the bytes added on the base ({shown} > {limit})"
    return RuleResult(rule, text, not failed, message if failed else "")
