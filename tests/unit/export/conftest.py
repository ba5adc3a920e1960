"""Fixtures for the exporter tests: a temporary store and a small image built in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerbuild.store.layout import Store
from tests.unit.export.export_images import DEFAULT_LAYERS, BuiltImage, build_image


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "store")


@pytest.fixture
def image(store: Store) -> BuiltImage:
    return build_image(store, DEFAULT_LAYERS)
