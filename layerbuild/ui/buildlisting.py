"""What `builds ls|show|logs|stats` print: history records (store/buildhistory.py) as text."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from layerbuild.engine.buildstats import StepStats, advice
from layerbuild.ui.listing import human_size


def ago(then: float, now: float) -> str:
    seconds = max(0.0, now - then)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def image_of(record: dict[str, Any]) -> str:
    tags = record.get("tags") or []
    if tags:
        return ", ".join(str(t) for t in tags)
    image = record.get("image")
    return str(image)[7:19] if image else "-"


def cached_of(record: dict[str, Any]) -> str:
    summary = record.get("summary") or {}
    return f"{summary.get('hits', 0)}/{summary.get('steps', 0)}"


def ls_row(record: dict[str, Any], status: str) -> dict[str, Any]:
    """A record as `builds ls --format json` gives it."""
    return {
        "id": record["id"],
        "image": record.get("image"),
        "tags": record.get("tags") or [],
        "status": status,
        "exit_code": record.get("exit_code"),
        "started": record.get("started"),
        "seconds": record.get("seconds"),
        "cached": (record.get("summary") or {}).get("hits", 0),
        "steps": (record.get("summary") or {}).get("steps", 0),
        "dockerfile": record.get("dockerfile"),
        "context": record.get("context"),
    }


def ls_table(rows: Sequence[tuple[dict[str, Any], str]], now: float | None = None) -> str:
    """(record, status) rows, newest first: id, image, status, when, duration, cached/total."""
    now = time.time() if now is None else now
    table = [("ID", "IMAGE", "STATUS", "WHEN", "DURATION", "CACHED")]
    for record, status in rows:
        table.append(
            (
                str(record["id"])[:12],
                image_of(record),
                status,
                ago(float(record.get("started", 0.0)), now),
                f"{float(record.get('seconds') or 0.0):.2f}s",
                cached_of(record),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table
    )


def show_text(record: dict[str, Any], status: str) -> str:
    """The whole record, as `buildx history inspect` lays one out, each miss with its reason."""
    started = float(record.get("started", 0.0))
    when = datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M:%S")
    summary = record.get("summary") or {}
    args = record.get("build_args") or {}
    fields = [
        ("ID", record["id"]),
        ("Status", f"{status} (exit {record.get('exit_code')})"
         if record.get("exit_code") is not None else status),
        ("Started", f"{when} ({ago(started, time.time())})"),
        ("Duration", f"{float(record.get('seconds') or 0.0):.2f}s"),
        ("Dockerfile", f"{record.get('dockerfile')} ({record.get('dockerfile_digest') or '-'})"),
        ("Context", record.get("context")),
        ("Target", record.get("target") or "-"),
        ("Platform", record.get("platform")),
        ("Tags", ", ".join(record.get("tags") or []) or "-"),
        ("Image", record.get("image") or "-"),
        ("Build args", " ".join(f"{k}={v}" for k, v in args.items()) or "-"),
        ("Secrets", ", ".join(record.get("secrets") or []) or "-"),
        ("Steps", f"{summary.get('steps', 0)} ({summary.get('hits', 0)} cached, "
         f"{summary.get('misses', 0)} built)"),
    ]
    if record.get("error"):
        fields.append(("Error", str(record["error"]).splitlines()[0]))
    lines = [f"{name + ':':<12}{value}" for name, value in fields]
    for w in record.get("warnings") or ():
        lines.append(f"{'Warning:':<12}{w.get('rule')}: {w.get('message')} (line {w.get('line')})")
    lines += ["", "STEP  LINE  CACHE  TIME    LAYER            INSTRUCTION"]
    for step in record.get("steps") or ():
        lines += _step_lines(step)
    return "\n".join(lines)


def _step_lines(step: dict[str, Any]) -> list[str]:
    layer = str(step.get("layer") or "")
    size = step.get("layer_size")
    shown = f"{layer[7:15]} {human_size(size)}" if layer and size is not None else layer[7:15]
    head = (
        f"#{step.get('step_id', step.get('index'))!s:<5}{step.get('line')!s:<6}"
        f"{step.get('cache', '')!s:<7}{float(step.get('seconds', 0.0)):<8.2f}{shown or '-':<17}"
        f"{step.get('instruction', '')}"
    )
    lines = [head]
    if step.get("cache") in ("miss", "error") and step.get("reason"):
        label = "why" if step["cache"] == "miss" else "error"
        lines.append(f"      {label}: {str(step['reason']).splitlines()[0]}")
    files = step.get("files")
    if files:
        split = (
            f" ({files['added']} added, {files['changed']} changed)"
            if files.get("added") is not None else ""
        )
        lines.append(
            f"      files: {files['written']} written{split}, {files['removed']} removed, "
            f"{human_size(int(files['bytes']))}"
        )
        lines += [f"        {p}" for p in files.get("paths") or ()]
        more = int(files["written"]) + int(files["removed"]) - len(files.get("paths") or ())
        if more > 0:
            lines.append(f"        ... and {more} more")
    return lines


def logs_text(record: dict[str, Any], step_id: int | None = None) -> str:
    """The output kept of each step (or of one), under the step's line."""
    names = {s.get("step_id"): s for s in record.get("steps") or ()}
    lines = []
    for log in record.get("logs") or ():
        if step_id is not None and log["step_id"] != step_id:
            continue
        step = names.get(log["step_id"], {})
        lines.append(f"#{log['step_id']} {step.get('instruction', '')}")
        if log.get("dropped"):
            lines.append(f"#{log['step_id']} ({log['dropped']} earlier lines not kept)")
        lines += [f"#{log['step_id']} {line}" for line in log["lines"]]
    return "\n".join(lines)


def stats_text(stats: Sequence[StepStats], dockerfile: str, builds: int) -> str:
    """Each step's hit ratio, then the advice for the steps their own inputs made miss."""
    lines = [f"{dockerfile}: the last {builds} builds", ""]
    lines.append("LINE  HITS     RATIO  INSTRUCTION")
    for s in stats:
        ratio = f"{s.hits / s.builds:.0%}" if s.builds else "-"
        lines.append(f"{s.line:<6}{f'{s.hits}/{s.builds}':<9}{ratio:<7}{s.instruction}")
    told = [advice(s) for s in stats if advice(s)]
    if told:
        lines += ["", *told]
    return "\n".join(lines)
