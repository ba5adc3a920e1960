"""The one exception tree of layerbuild.

Every error a user can cause or meet derives from LayerbuildError and carries a message that says
what was wrong, where, and what to do. This module imports nothing from layerbuild so that every
package, pure or not, can raise these (an OSError of the machine's making: hosterrors.py).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit status of `layerbuild`, one per error category (docs/commands.md, "Exit codes").

    2 is shared on purpose, as docker and click have it: a Dockerfile error (`error: FILE:LINE:`),
    a usage error click reports (`Usage: ...`) and a malformed value of our own parsers (an
    InvalidReference, a bad --cache-to; `error: ...`). USAGE is DOCKERFILE's alias."""

    OK = 0
    FAILURE = 1  # a LayerbuildError of no other category; also a bug's traceback
    DOCKERFILE = 2
    USAGE = 2  # click.UsageError's own status, and our malformed option values
    CONTEXT = 3
    BUILD = 4
    STORE = 5
    IMAGE_FORMAT = 6
    EXPORT = 7
    REGISTRY = 8
    HOST = 9
    FSCK_PROBLEMS = 10  # `fsck` left problems in the store
    CHECKS = 11  # a build check warned and `# check=error=true` makes that fatal
    NOT_CACHED = 12  # `build --expect-cached`: a step would have run
    WOULD_BUILD = 1  # `build --dry-run=strict`: a step would miss the cache or is unknown
    DIFFERENT = 1  # `diff`: the two images differ (as diff(1) exits)
    INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it


class LayerbuildError(Exception):
    """Base of all errors layerbuild reports to a user (rendered without a traceback)."""

    reference = "error"
    exit_code = ExitCode.FAILURE

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
    exit_code = ExitCode.DOCKERFILE

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
    exit_code = ExitCode.CONTEXT


class BuildError(LayerbuildError):
    """A step failed while building; `step` names it (e.g. 'stage build, line 7: COPY ...')."""

    reference = "build"
    exit_code = ExitCode.BUILD

    def __init__(self, message: str, *, step: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.step = step

    def __str__(self) -> str:
        base = super().__str__()
        return f"{self.step}: {base}" if self.step else base


class CheckViolation(LayerbuildError):
    """Build checks warned and the check options say `error=true` (docs/checks.md)."""

    reference = "check"
    exit_code = ExitCode.CHECKS


class NotCached(BuildError):
    """`build --expect-cached`: a step missed the cache; the build stopped before running it."""

    exit_code = ExitCode.NOT_CACHED


class UnsupportedError(BuildError):
    """A feature that parses but that this version of layerbuild cannot execute yet."""

    reference = "unsupported"


class StoreError(LayerbuildError):
    """The local store is missing something, is locked, or is inconsistent."""

    reference = "store"
    exit_code = ExitCode.STORE


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


class SizeMismatch(DigestMismatch):
    """Content was not of the size it was promised to have (a descriptor's size, a file on disk
    that lost or kept bytes a write did not account for)."""

    reference = "size-mismatch"

    def __init__(self, expected: str, actual: str, *, what: str) -> None:
        super().__init__(expected, actual, what=what)
        self.message = what
        self.hint = "the data was truncated or the disk lost a write; nothing was stored"


class ImageNotFound(StoreError):
    """No image of that name or digest is in the local store."""

    reference = "image-not-found"


class ImageFormatError(LayerbuildError):
    """An image, layout or archive is not valid OCI/Docker (bad JSON, missing blob, ...)."""

    reference = "image-format"
    exit_code = ExitCode.IMAGE_FORMAT


class UnsafeArchiveError(ImageFormatError):
    """An archive entry would land outside its root: refused as an attack, not an edge case."""

    reference = "unsafe-archive"


class ExportError(LayerbuildError):
    """An --output destination could not be written."""

    reference = "export"
    exit_code = ExitCode.EXPORT


class RegistryError(LayerbuildError):
    """A registry or HTTP source answered with an error, or could not be reached."""

    reference = "registry"
    exit_code = ExitCode.REGISTRY

    def __init__(
        self, message: str, *, status: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class HostError(LayerbuildError):
    """The machine refused a file or process operation: no space left, permission denied, a
    read-only file system, an I/O error, too many open files. Names the path; see
    hosterrors.host_error."""

    reference = "host"
    exit_code = ExitCode.HOST

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        errno_code: int = 0,
        hint: str | None = None,
        step: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.errno = errno_code
        self.step = step  # set by the build, as for BuildError

    def __str__(self) -> str:
        base = super().__str__()
        return f"{self.step}: {base}" if self.step else base


# --- the Dockerfile -----------------------------------------------------------------------------


class ShellExpansionError(LayerbuildError):
    """A word could not be expanded (bad `${...}`, unbalanced quote, `${v:?}` on an unset v):
    `word` as written, `reason` what is wrong; callers that know the line wrap it."""

    def __init__(self, word: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"cannot expand {word!r}: {reason}",
            hint=hint
            or "check the ${...} syntax and the quotes; to keep a literal $, escape it (\\$)",
        )
        self.word = word
        self.reason = reason


class NotStringArray(ValueError):
    """A JSON array whose items are not all strings: Docker rejects it instead of falling back."""


# --- the build context --------------------------------------------------------------------------


class BadPattern(ValueError):
    """A pattern is not valid Go filepath.Match syntax."""


# --- running a step -----------------------------------------------------------------------------


class SandboxError(BuildError):
    """Namespaces, mounts or the exec could not be prepared for a RUN step: the message names
    the syscall and its path, the hint what to change on the host."""

    reference = "sandbox"


class RootfsError(SandboxError):
    """The rootfs could not be mounted: nothing ran yet, another snapshotter may work."""


class FetchError(LayerbuildError):
    """A remote ADD source could not be downloaded; `url` and the HTTP `status` if any."""

    reference = "fetch"
    exit_code = ExitCode.REGISTRY  # as RegistryError: a remote source answered badly

    def __init__(
        self, message: str, *, url: str, status: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.url = url
        self.status = status


class ChecksumMismatch(FetchError):
    """The downloaded content does not match `ADD --checksum`."""

    reference = "fetch-checksum"

    def __init__(self, url: str, expected: str, actual: str) -> None:
        super().__init__(
            f"ADD {url}: checksum mismatch: expected {expected}, got {actual}",
            url=url,
            hint="the file on the server changed or the --checksum is wrong; if the new content "
            f"is trusted, use --checksum={actual}",
        )
        self.expected = expected
        self.actual = actual


# --- the store ----------------------------------------------------------------------------------


class BlobNotFound(StoreError):
    """A blob that should be in the store is not there."""

    reference = "blob-not-found"


class UnmappedOwnerError(StoreError):
    """A layer entry's owner is not mapped in this process's (rootless) user namespace."""

    reference = "unmapped-owner"


# --- images and layers --------------------------------------------------------------------------


class SymlinkLoopError(ImageFormatError):
    """Resolving a path in an image met more than image/tree.py's MAX_SYMLINKS symlinks."""


class LayerContentError(LayerbuildError):
    """A file's content could not be read as declared while a layer was being written."""


# --- registries and the remote cache ------------------------------------------------------------


class InvalidReference(LayerbuildError):
    """An image name, tag or digest that does not follow Docker's naming rules."""

    reference = "invalid-reference"
    exit_code = ExitCode.USAGE


class RegistryUnavailable(RegistryError):
    """The registry could not be reached, or kept answering 5xx/429: worth retrying later."""

    reference = "registry-unavailable"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        hint: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, hint=hint)
        self.retry_after = retry_after  # seconds the registry asked us to wait, bounded


class CacheError(LayerbuildError):
    """A --cache-to/--cache-from spec is wrong, or an exported cache cannot be read."""

    reference = "cache"
    exit_code = ExitCode.USAGE


class AnalyzeLimitsExceeded(LayerbuildError):
    """`analyze --ci`: the image breaks one of its thresholds (a result, printed first)."""

    reference = "analyze-ci"
    exit_code = ExitCode.FAILURE


# --- option values: ValueErrors the CLI turns into usage errors ---------------------------------


class LimitSpecError(ValueError):
    """A --shm-size or --ulimit value that docker build would refuse too."""


class SecretSpecError(ValueError):
    """A --secret value that docker buildx would refuse too."""


class AnnotationSpecError(ValueError):
    """An --annotation value buildx would refuse too."""


class OutputSpecError(ValueError):
    """An --output value, key or option value the named output type does not take."""


class ThresholdSpecError(ValueError):
    """An `analyze --ci` threshold (option or pyproject.toml value) no rule can use."""


# --- signals between modules, always caught, never shown to a user ------------------------------


class ChildFailed(Exception):
    """The child raised, was killed, or sent something that is not its result."""
