"""RegistryOptions: how to talk to registries. Apart from the transport so that a build that
never contacts a registry does not import http.client and ssl (a cached rebuild's start-up).

The CLI takes the retry count, first backoff and socket timeout from the environment's
LAYERBUILD_REGISTRY_RETRIES / _BACKOFF / _TIMEOUT when set (docs/registry.md), in
`from_environ` only: CI jobs against a slow registry raise them, tests of fault handling lower
them, and library callers get the plain defaults whatever the environment says.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

_TUNABLE = (
    ("retries", "LAYERBUILD_REGISTRY_RETRIES", int),
    ("backoff", "LAYERBUILD_REGISTRY_BACKOFF", float),
    ("timeout", "LAYERBUILD_REGISTRY_TIMEOUT", float),
)


def _tuned(environ: Mapping[str, str]) -> dict[str, int | float]:
    """The tunables the environment sets; a bad value is ignored with a warning."""
    tuned: dict[str, int | float] = {}
    for name, var, convert in _TUNABLE:
        value = environ.get(var, "")
        if not value:
            continue
        try:
            number: int | float = convert(value)
        except ValueError:
            number = -1
        if number < 0:
            # a default is safer than failing every registry command over a tuning knob
            print(f"warning: ignoring {var}={value!r}: not a number >= 0", file=sys.stderr)
            continue
        tuned[name] = number
    return tuned


@dataclass(frozen=True, slots=True)
class RegistryOptions:
    """How to talk to registries; the defaults suit a CLI run."""

    insecure: frozenset[str] = frozenset()  # hosts (host or host:port) spoken to over plain HTTP
    ca_file: Path | None = None  # extra CA bundle, on top of the system store
    retries: int = 4  # per request, on connection errors, 429 and 5xx
    backoff: float = 0.5  # seconds before the first retry; doubles each time
    timeout: float = 120.0  # socket timeout per connect/read: a stalled registry ends here
    chunk_threshold: int = 64 << 20  # blobs larger than this are uploaded in chunks
    chunk_size: int = 32 << 20
    parallel: int = 4  # blobs transferred at the same time
    extra_headers: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], *, insecure: frozenset[str], ca_file: Path | None
    ) -> RegistryOptions:
        """The CLI's options: the given ones, and the tunables the environment sets."""
        return cls(insecure=insecure, ca_file=ca_file, **_tuned(environ))  # type: ignore[arg-type]

    def with_insecure(self, hosts: tuple[str, ...] | frozenset[str]) -> RegistryOptions:
        return replace(self, insecure=self.insecure | frozenset(hosts))
