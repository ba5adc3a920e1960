"""A build's history record: what `builds ls/show/logs/export` and `cache compare ID` read.

Pure. The record is the build's --report (engine/report.BuildReport, folded from the same
events) plus what the report leaves out: when and what was built (Dockerfile, its digest, the
context, target, platform, build args with the values of secret-looking names hidden), how it
ended, what each step that ran put in its layer (engine/layerfiles) and the steps' output, kept
bounded. It is written (store/buildhistory.py) as "running" when the build starts and after
each step that ran, and whole when it ends: a killed build is listed with what it had done.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from layerbuild.digest import Digest
from layerbuild.engine.events import BuildEvent, Log, StepDone, StepStarted
from layerbuild.engine.options import BuildOptions
from layerbuild.engine.report import BuildReport
from layerbuild.errors import ExitCode

if TYPE_CHECKING:
    from layerbuild.store.layout import Store

LOG_LINES = 200  # per step: the last ones are kept (a failing step's end is what matters)
LOG_LINE_CHARS = 500
LOG_BUDGET = 256 * 1024  # characters of output a record keeps in all
HIDDEN = "****"

# the names BuildKit's SecretsUsedInArgOrEnv check takes for secrets (docs/checks.md)
_SECRET = re.compile(
    r"(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)"
    r"(?:_|$)",
    re.IGNORECASE,
)
_NOT_SECRET = re.compile(r"(?:_|^)(?:public|file|version)(?:_|$)", re.IGNORECASE)


def shown_args(build_args: Mapping[str, str]) -> dict[str, str]:
    """Build args as a record keeps them: a secret-looking name's value is hidden."""
    return {
        name: HIDDEN if _SECRET.search(name) and not _NOT_SECRET.search(name) else value
        for name, value in sorted(build_args.items())
    }


def header(
    build_id: str, options: BuildOptions, started: float, pid: int, dockerfile_digest: str | None
) -> dict[str, Any]:
    """What a record says of the build before it runs. `dockerfile` is the absolute path the
    history groups builds by (`^1`, `builds stats`); "-" for a Dockerfile read from stdin."""
    path = options.dockerfile or options.context / "Dockerfile"
    return {
        "id": build_id,
        "started": round(started, 3),
        "pid": pid,
        "dockerfile": "-" if options.dockerfile_text is not None else os.path.abspath(path),
        "dockerfile_digest": dockerfile_digest,
        "context": os.path.abspath(options.context),
        "target": options.target,
        "platform": str(options.platform),
        "tags": list(options.tags),
        "build_args": shown_args(options.build_args),
        "secrets": sorted(options.secrets),  # the ids, never the values
        "no_cache": options.no_cache,
    }


def ended(error: BaseException | None) -> tuple[str, int, str]:
    """(status, exit status, error text) of a build that ended with `error` (None: it
    succeeded), as failure.py will report it."""
    if error is None:
        return "completed", int(ExitCode.OK), ""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", int(ExitCode.INTERRUPTED), "interrupted"
    if isinstance(error, SystemExit):
        code = error.code if isinstance(error.code, int) else int(ExitCode.FAILURE)
        return ("completed" if code == 0 else "failed"), code, ""
    code = getattr(error, "exit_code", ExitCode.HOST if isinstance(error, OSError) else 1)
    return "failed", int(code), str(error) or type(error).__name__


class Writer(Protocol):
    """Where records go (store/buildhistory.BuildHistory)."""

    def write(self, record: dict[str, Any]) -> None: ...

    def retain(self) -> list[str]: ...


CHECKPOINT_S = 1.0  # a running record is rewritten after a step that ran, or this often


class BuildRecorder:
    """Folds the events the report does not keep (step output, layer file summaries) and
    writes the record: "running" at the start, again after each step that ran (a killed
    build keeps what it did; a fully cached build writes only twice), whole at the end."""

    def __init__(
        self,
        header: dict[str, Any],
        report: BuildReport,
        writer: Writer,
        sizes: Callable[[str], int | None] = lambda digest: None,
    ) -> None:
        self.header = header  # id, started, pid, dockerfile, ... (`header`)
        self.report = report  # fed the same events first (the CLI's emit)
        self.writer = writer
        self.sizes = sizes  # a stored layer's size by its digest (None: not stored)
        self._t0 = time.monotonic()
        self._written = self._t0
        self._order: list[int] = []  # step ids in the order the report lists its steps
        self._files: dict[int, dict[str, object]] = {}
        self._logs: dict[int, list[str]] = {}
        self._dropped: dict[int, int] = {}
        self._chars = 0

    def start(self) -> None:
        self._checkpoint()

    def _checkpoint(self) -> None:
        # the history must never fail a build: a disk that refuses this write is met, and
        # reported, by the build's own next write; the last record written stays
        with contextlib.suppress(OSError):
            self._write("running", None)

    def finish(self, error: BaseException | None) -> None:
        """The build ended (`error`: why, None when it succeeded): the whole record."""
        self._write(*ended(error))
        self.writer.retain()

    def __call__(self, event: BuildEvent) -> None:
        if isinstance(event, StepStarted):
            self._order.append(event.step_id)
        elif isinstance(event, StepDone):
            if event.files is not None:
                self._files[event.step_id] = event.files.to_json()
            if not event.cached or time.monotonic() - self._written > CHECKPOINT_S:
                self._checkpoint()
        elif isinstance(event, Log) and event.step_id is not None:
            self._log(event.step_id, event.message)

    def _write(self, status: str, exit_code: int | None, error: str = "") -> None:
        self._written = time.monotonic()
        seconds = self._written - self._t0
        self.writer.write(
            self.record(self.report, status, seconds=seconds, exit_code=exit_code, error=error)
        )

    def _log(self, step_id: int, message: str) -> None:
        lines = self._logs.setdefault(step_id, [])
        for line in message.splitlines() or [""]:
            line = line if len(line) <= LOG_LINE_CHARS else line[:LOG_LINE_CHARS] + "..."
            if self._chars + len(line) > LOG_BUDGET:
                self._dropped[step_id] = self._dropped.get(step_id, 0) + 1
                continue
            lines.append(line)
            self._chars += len(line)
            if len(lines) > LOG_LINES:
                self._chars -= len(lines.pop(0))
                self._dropped[step_id] = self._dropped.get(step_id, 0) + 1

    def record(
        self,
        report: BuildReport,
        status: str,
        *,
        seconds: float,
        exit_code: int | None,
        error: str,
    ) -> dict[str, Any]:
        """The whole record once the build ended (or is still running: status "running")."""
        body = report.to_json()
        steps = body["steps"]
        for step, step_id in zip(steps, self._order, strict=False):
            step["step_id"] = step_id
            if step["layer"]:
                step["layer_size"] = self.sizes(step["layer"])
            if step_id in self._files:
                step["files"] = self._files[step_id]
        logs = [
            {"step_id": step_id, "lines": lines, "dropped": self._dropped.get(step_id, 0)}
            for step_id, lines in sorted(self._logs.items())
        ]
        return {
            **self.header,
            "status": status,
            "exit_code": exit_code,
            "error": error,
            "seconds": round(seconds, 4),
            "image": body["image"],
            "summary": body["summary"],
            "steps": steps,
            "warnings": body["warnings"],
            "cache_imports": body["cache_imports"],
            "cache_exports": body["cache_exports"],
            "logs": logs,
        }


def start_recording(
    options: BuildOptions,
    report: BuildReport,
    writer: Writer,
    sizes: Callable[[str], int | None] = lambda digest: None,
) -> BuildRecorder:
    """A recorder for the build of `options`, its "running" record written."""
    path = options.dockerfile or options.context / "Dockerfile"
    text = options.dockerfile_text
    try:
        data = text.encode() if text is not None else path.read_bytes()
        digest: str | None = "sha256:" + hashlib.sha256(data).hexdigest()
    except OSError:
        digest = None  # the build says why it cannot read it
    head = header(os.urandom(10).hex(), options, time.time(), os.getpid(), digest)
    recorder = BuildRecorder(head, report, writer, sizes)
    recorder.start()
    return recorder


def stored_sizes(store: Store) -> Callable[[str], int | None]:
    """A layer's stored (compressed) size by its digest; None when it is not there."""

    def size(digest: str) -> int | None:
        try:
            return store.content.path(Digest(digest)).stat().st_size
        except (OSError, ValueError):
            return None

    return size
