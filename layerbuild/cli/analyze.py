"""`layerbuild analyze IMAGE`: what an image's layers waste, dive's efficiency, and `--ci`."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

from layerbuild.cli import options
from layerbuild.cli.context import Context
from layerbuild.errors import AnalyzeLimitsExceeded, ThresholdSpecError


@click.command("analyze")
@click.argument("image")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True,
              help="Wasted paths to list.")  # fmt: skip
@click.option("--platform", "platform_text", help="os/arch[/variant] of a multi-platform image.")
@click.option("--ci", is_flag=True, help="Check the CI rules; exit 1 if one fails.")
@click.option("--lowest-efficiency", help="Fail below this efficiency (0-1; dive's default 0.9).")
@click.option("--highest-wasted-bytes", help="Fail above this many wasted bytes (20MB, 1MiB).")
@click.option("--highest-user-wasted-percent",
              help="Fail above this ratio of wasted to added bytes (0-1; dive: 0.1).")  # fmt: skip
@click.option("--ci-config", type=click.Path(path_type=Path, dir_okay=False),
              help="A pyproject.toml with a [tool.layerbuild.analyze] table "
              "(default: ./pyproject.toml, if it has one).")  # fmt: skip
@click.pass_obj
def analyze_cmd(
    ctx: Context,
    image: str,
    fmt: str,
    limit: int,
    platform_text: str | None,
    ci: bool,
    ci_config: Path | None,
    lowest_efficiency: str | None,
    highest_wasted_bytes: str | None,
    highest_user_wasted_percent: str | None,
) -> None:
    """Show what IMAGE's layers waste and how efficient it is (as dive counts).

    IMAGE is an image in the store, or the path of an OCI layout directory, an OCI tarball or a
    docker-archive (a path that exists is read as a path).
    """
    from layerbuild.analyze import report, source, thresholds  # codecs and tar readers
    from layerbuild.ui.analysis import render

    rules = {
        "lowest-efficiency": lowest_efficiency,
        "highest-wasted-bytes": highest_wasted_bytes,
        "highest-user-wasted-percent": highest_user_wasted_percent,
    }
    values = _rule_values(ci_config, rules)
    platform = options.platform(platform_text) if platform_text else None
    path = Path(image)
    if path.exists():
        found = source.from_path(path, platform)
    else:
        found = source.from_store(ctx.store(), image, platform)
    analysis = report.analyze(found)
    if ci:
        checked = thresholds.evaluate(values, analysis.dive)
        analysis = dataclasses.replace(analysis, rules=tuple(checked))
    if fmt == "json":
        click.echo(json.dumps(report.to_json(analysis), indent=2))
    else:
        click.echo(render(analysis, terminal=sys.stdout.isatty(), limit=limit))
    failed = [r for r in analysis.rules if r.passed is False]
    if failed:
        raise AnalyzeLimitsExceeded(
            f"{image} fails {len(failed)} CI rule(s): {', '.join(r.rule for r in failed)}",
            hint="fix the wasted paths that analyze lists, or change the thresholds "
            "(docs/analyze.md)",
        )


def _rule_values(ci_config: Path | None, rules: dict[str, str | None]) -> dict[str, str]:
    """The rule values: the pyproject table's, then the options'; usage errors if bad."""
    from layerbuild.analyze.thresholds import from_pyproject, validate

    try:
        path = ci_config or Path("pyproject.toml")
        values = from_pyproject(path, required=ci_config is not None)
        values.update({k: v for k, v in rules.items() if v is not None})
        validate(values)
    except ThresholdSpecError as e:
        raise click.BadParameter(str(e), param_hint="the CI thresholds") from None
    return values
