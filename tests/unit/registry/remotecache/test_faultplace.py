"""Whose fault an error is: the store's, or a cache source's (remotecache/faultplace.py)."""

from __future__ import annotations

import errno
from pathlib import Path

from layerbuild.errors import RegistryError
from layerbuild.registry.remotecache.faultplace import names_below, store_fault


def test_a_store_fault_behind_a_registry_error_is_found(tmp_path: Path) -> None:
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "store" / "ingest/x"))
    try:
        try:
            raise full
        except OSError as e:
            raise RegistryError("cannot reach registry") from e
    except RegistryError as wrapped:
        assert store_fault(tmp_path / "store", wrapped) is full
        assert store_fault(tmp_path / "other", wrapped) is None
    assert store_fault(tmp_path, RegistryError("503")) is None
    elsewhere = OSError(errno.ENOSPC, "x", "/src/blob", None, str(tmp_path / "dest" / "t"))
    assert names_below(elsewhere, tmp_path / "dest") and not names_below(elsewhere, tmp_path / "s")
