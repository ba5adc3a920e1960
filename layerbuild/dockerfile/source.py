"""The text of a Dockerfile and how to point at a place in it.

Every instruction keeps a `Span` (1-based, inclusive line range) so that errors found later, by
the planner or the executor, can still quote the offending line. `DockerfileSource.error` is the
one place that turns a message plus a location into a `DockerfileError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from layerbuild.errors import DockerfileError


@dataclass(frozen=True)
class Span:
    """Lines `start_line`..`end_line` (1-based, inclusive) of a Dockerfile."""

    start_line: int
    end_line: int

    def __str__(self) -> str:
        if self.start_line == self.end_line:
            return str(self.start_line)
        return f"{self.start_line}-{self.end_line}"


@dataclass(frozen=True)
class DockerfileSource:
    """A Dockerfile's name (for messages) and its full text."""

    name: str
    text: str
    _lines: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Docker accepts CRLF files; a lone CR is also treated as a line break by splitlines,
        # which matches how Go's bufio scanner plus TrimSuffix("\r") behaves closely enough.
        text = self.text[1:] if self.text.startswith("\ufeff") else self.text
        object.__setattr__(self, "_lines", tuple(text.splitlines()))

    @property
    def lines(self) -> tuple[str, ...]:
        """All lines, without line terminators (a leading BOM is dropped)."""
        return self._lines

    def line(self, n: int) -> str:
        """Line `n` (1-based) without its terminator; "" when out of range."""
        if 1 <= n <= len(self._lines):
            return self._lines[n - 1]
        return ""

    def error(
        self,
        message: str,
        span: Span | None,
        *,
        column: int | None = None,
        hint: str | None = None,
    ) -> DockerfileError:
        """A DockerfileError pointing at the first line of `span` (or at the whole file)."""
        if span is None:
            return DockerfileError(message, file=self.name, hint=hint)
        return DockerfileError(
            message,
            file=self.name,
            line=span.start_line,
            column=column,
            source_line=self.line(span.start_line),
            hint=hint,
        )
