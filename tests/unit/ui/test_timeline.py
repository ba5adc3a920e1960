"""Where a build page's bars go (ui/timeline.py): by the steps' starts, or one after another."""

from __future__ import annotations

from layerbuild.ui.timeline import layout, overlaps


def test_bars_are_placed_by_their_start_and_overlap_when_steps_ran_at_once() -> None:
    steps = [{"start": 0.0, "seconds": 2.0}, {"start": 0.5, "seconds": 1.0},
             {"start": 2.0, "seconds": 2.0}]  # fmt: skip
    a, b, c = layout(steps, total=4.0)
    assert (a.left, a.width, b.left, b.width, c.left) == (0.0, 50.0, 12.5, 25.0, 50.0)
    assert overlaps(a, b) and not overlaps(a, c) and not overlaps(b, c)
    assert all(bar.measured for bar in (a, b, c))


def test_without_starts_each_step_follows_the_one_before() -> None:
    bars = layout([{"seconds": 1.0}, {"seconds": 3.0}, {"start": None, "seconds": 0}])
    assert [(b.start, b.end) for b in bars] == [(0.0, 1.0), (1.0, 4.0), (4.0, 4.0)]
    assert [b.left for b in bars] == [0.0, 25.0, 100.0] and not bars[0].measured


def test_the_timeline_spans_the_build_or_the_last_step_whichever_is_longer() -> None:
    (bar,) = layout([{"start": 1.0, "seconds": 1.0}], total=10.0)
    assert (bar.left, bar.width) == (10.0, 10.0)
    (bar,) = layout([{"start": 1.0, "seconds": 3.0}], total=2.0)  # started before the build
    assert (bar.left, bar.width) == (25.0, 75.0)


def test_instant_builds_and_junk_values_do_not_divide_by_zero() -> None:
    bars = layout([{"seconds": 0.0}, {"seconds": "x", "start": True}, {}])
    assert [(b.left, b.width) for b in bars] == [(0.0, 0.0)] * 3
