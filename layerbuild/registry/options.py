"""RegistryOptions: how to talk to registries. Apart from the transport so that a build that
never contacts a registry does not import http.client and ssl (a cached rebuild's start-up)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True, slots=True)
class RegistryOptions:
    """How to talk to registries; the defaults suit a CLI run."""

    insecure: frozenset[str] = frozenset()  # hosts (host or host:port) spoken to over plain HTTP
    ca_file: Path | None = None  # extra CA bundle, on top of the system store
    retries: int = 4  # per request, on connection errors, 429 and 5xx
    backoff: float = 0.5  # seconds before the first retry; doubles each time
    timeout: float = 120.0  # socket timeout per connect/read
    chunk_threshold: int = 64 << 20  # blobs larger than this are uploaded in chunks
    chunk_size: int = 32 << 20
    parallel: int = 4  # blobs transferred at the same time
    extra_headers: tuple[tuple[str, str], ...] = field(default=())

    def with_insecure(self, hosts: tuple[str, ...] | frozenset[str]) -> RegistryOptions:
        return replace(self, insecure=self.insecure | frozenset(hosts))
