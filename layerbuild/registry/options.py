"""RegistryOptions: how to talk to registries. Apart from the transport so that a build that
never contacts a registry does not import http.client and ssl (a cached rebuild's start-up).

The retry count, first backoff and socket timeout default to the environment's
LAYERBUILD_REGISTRY_RETRIES / _BACKOFF / _TIMEOUT when set (docs/registry.md): CI jobs against
a slow registry raise them, tests of fault handling lower them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

N = TypeVar("N", int, float)


def _from_env(name: str, default: N, convert: Callable[[str], N]) -> Callable[[], N]:
    def read() -> N:
        value = os.environ.get(name)
        if value is None or value == "":
            return default
        try:
            number = convert(value)
        except ValueError:
            number = convert("-1")
        if number < 0:
            # a default is safer than failing every registry command over a tuning knob
            print(f"warning: ignoring {name}={value!r}: not a number >= 0", file=sys.stderr)
            return default
        return number

    return read


@dataclass(frozen=True, slots=True)
class RegistryOptions:
    """How to talk to registries; the defaults suit a CLI run."""

    insecure: frozenset[str] = frozenset()  # hosts (host or host:port) spoken to over plain HTTP
    ca_file: Path | None = None  # extra CA bundle, on top of the system store
    # per request, on connection errors, 429 and 5xx
    retries: int = field(default_factory=_from_env("LAYERBUILD_REGISTRY_RETRIES", 4, int))
    # seconds before the first retry; doubles each time
    backoff: float = field(default_factory=_from_env("LAYERBUILD_REGISTRY_BACKOFF", 0.5, float))
    # socket timeout per connect/read: a registry that stalls is given up on after this
    timeout: float = field(default_factory=_from_env("LAYERBUILD_REGISTRY_TIMEOUT", 120.0, float))
    chunk_threshold: int = 64 << 20  # blobs larger than this are uploaded in chunks
    chunk_size: int = 32 << 20
    parallel: int = 4  # blobs transferred at the same time
    extra_headers: tuple[tuple[str, str], ...] = field(default=())

    def with_insecure(self, hosts: tuple[str, ...] | frozenset[str]) -> RegistryOptions:
        return replace(self, insecure=self.insecure | frozenset(hosts))
