""""did you mean X?": the closest name within two edits (BuildKit's util/suggest.Search)."""

from __future__ import annotations

from collections.abc import Iterable


def closest(value: str, options: Iterable[str]) -> str:
    """The option nearest to `value` (fewer than 3 edits), "" when none is or one equals it."""
    best, best_distance = "", 3
    for option in sorted(options):
        if option == value:
            return ""
        distance = _levenshtein(value, option)
        if distance < best_distance:
            best, best_distance = option, distance
    return best


def _levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]
