"""Which speed-ups a build runs with, from its BuildOptions (engine/speedups/active.py):
NullSpeedups, the reference behaviour, once every one is off; else each part as its field says."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from layerbuild.engine.options import BuildOptions
from layerbuild.engine.speedups.active import ActiveSpeedups, speedups_for
from layerbuild.engine.speedups.base import NullSpeedups, Speedups

SWITCHES = ("quick_keys", "speculative_packing", "snapshots_ahead", "run_ahead", "splice")
ALL_OFF = BuildOptions(Path("."), **dict.fromkeys(SWITCHES, False))
NONE = cast(Any, None)
PARTS = (NONE, NONE, NONE, NONE)  # the build's stat cache, step cache, ...: only kept here


def test_every_speedup_off_is_the_null_implementation() -> None:
    chosen = speedups_for(ALL_OFF, PARTS, None)
    assert isinstance(chosen, NullSpeedups)
    assert chosen.speculative_packing is False


@pytest.mark.parametrize("switch", SWITCHES)
def test_one_speedup_on_is_the_active_one_with_that_part(switch: str) -> None:
    chosen = speedups_for(replace(ALL_OFF, **{switch: True}), PARTS, None)
    assert isinstance(chosen, ActiveSpeedups)
    parts = {
        "quick_keys": chosen.quick_keys,
        "speculative_packing": chosen.speculative_packing,
        "snapshots_ahead": chosen.copies.ahead,
        "run_ahead": chosen.run_ahead_on,
        "splice": chosen.splice_on,
    }
    assert {k for k, on in parts.items() if on} == {switch}


def test_the_null_implementation_offers_nothing() -> None:
    null: Speedups = NullSpeedups()
    none = NONE
    assert null.quick_key(none, none, none, none) is None
    assert null.quick_hit(none, none, []) is None
    assert null.pending_snapshot() is None
    assert null.take_ahead(none, none, none, 0) is None
    assert null.splice_from("stage", 1) is None
