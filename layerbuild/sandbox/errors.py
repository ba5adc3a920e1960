"""SandboxError: the sandbox itself could not be set up (as opposed to the command failing)."""

from __future__ import annotations

from layerbuild.errors import BuildError


class SandboxError(BuildError):
    """Namespaces, mounts or the exec could not be prepared for a RUN step.

    The message names what failed (the syscall and its path); the hint says what to change on
    the host (kernel feature, permission, package to install).
    """

    reference = "sandbox"
