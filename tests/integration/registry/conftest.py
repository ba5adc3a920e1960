"""Registry fixtures (tests/support/registry.py) and image makers for the registry tests."""

from __future__ import annotations

from tests.support.registry import (
    fast,
    registry,
    registry_basic,
    registry_cli,
    registry_token,
    token_issuer,
)

__all__ = ["fast", "registry", "registry_basic", "registry_cli", "registry_token", "token_issuer"]
