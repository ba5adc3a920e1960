"""The one exception tree of layerbuild.

Every error a user can cause or meet derives from LayerbuildError and carries a message that says
what was wrong, where, and what to do. This module imports nothing from layerbuild so that every
package, pure or not, can raise these.
"""

from __future__ import annotations


class LayerbuildError(Exception):
    """Base of all errors layerbuild reports to a user (rendered without a traceback)."""

    reference = "error"
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nhint: {self.hint}"
        return self.message


class DockerfileError(LayerbuildError):
    """The Dockerfile is malformed; points at file, line (1-based) and, where known, column."""

    reference = "dockerfile"
    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str = "Dockerfile",
        line: int | None = None,
        column: int | None = None,
        source_line: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.line = line
        self.column = column
        self.source_line = source_line

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: {self.message}"
        if self.source_line is not None:
            text += f"\n  {self.line} | {self.source_line}"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class ContextError(LayerbuildError):
    """A COPY/ADD source or the build context itself is unusable (missing file, escape, ...)."""

    reference = "context"
    exit_code = 3


class BuildError(LayerbuildError):
    """A step failed while building; `step` names it (e.g. 'stage build, line 7: COPY ...')."""

    reference = "build"
    exit_code = 4

    def __init__(self, message: str, *, step: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.step = step

    def __str__(self) -> str:
        base = super().__str__()
        return f"{self.step}: {base}" if self.step else base


class UnsupportedError(BuildError):
    """A feature that parses but that this version of layerbuild cannot execute yet."""

    reference = "unsupported"


class StoreError(LayerbuildError):
    """The local store is missing something, is locked, or is inconsistent."""

    reference = "store"
    exit_code = 5


class DigestMismatch(StoreError):
    """Content did not hash to the digest it was expected to have."""

    reference = "digest-mismatch"

    def __init__(self, expected: str, actual: str, *, what: str = "content") -> None:
        super().__init__(
            f"{what}: unexpected digest {actual}, expected {expected}",
            hint="the data was corrupted or truncated; retry, or re-create it",
        )
        self.expected = expected
        self.actual = actual


class ImageNotFound(StoreError):
    """No image of that name or digest is in the local store."""

    reference = "image-not-found"


class ImageFormatError(LayerbuildError):
    """An image, layout or archive is not valid OCI/Docker (bad JSON, missing blob, ...)."""

    reference = "image-format"
    exit_code = 6


class UnsafeArchiveError(ImageFormatError):
    """An archive entry would land outside its root: refused as an attack, not an edge case."""

    reference = "unsafe-archive"


class ExportError(LayerbuildError):
    """An --output destination could not be written."""

    reference = "export"
    exit_code = 7


class RegistryError(LayerbuildError):
    """A registry or HTTP source answered with an error, or could not be reached."""

    reference = "registry"
    exit_code = 8

    def __init__(
        self, message: str, *, status: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
