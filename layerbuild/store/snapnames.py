"""Names of per-layer snapshot directories (store/layers.py), and which directories a layer's
snapshot is made of.

A layer's snapshot is either *full* (``<hex>``: the whole layer in overlay lowerdir format) or
a *delta* (``<hex>-on-<base hex>``: only the entries that differ from the snapshot of the
layer `base`, plus their parent directories, meant to be stacked right above that one). The
flavour suffix ``-userns`` (written rootless) ends either kind, and a delta's base is always
of its own flavour. A delta is only ever written where stacking it on its base gives exactly
the layer's tree in any overlay (store/deltaplan.py says when), so both kinds are one layer's
snapshot to every reader; the name alone says what a directory needs, so committing one is a
single rename and gc never has to look inside.

Pure: these functions work on names; the callers list the directory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ROOTLESS_SUFFIX = "-userns"
DELTA_SEP = "-on-"
# a chain longer than this is a corrupt store (a cycle cannot be written: see layers.py)
MAX_CHAIN = 64


@dataclass(frozen=True, slots=True)
class SnapName:
    """A committed snapshot directory's name, parsed: the layer's diff_id hex, its base's (a
    delta) or None (full), and whether it is of the rootless flavour."""

    hex: str
    base: str | None
    rootless: bool

    @property
    def name(self) -> str:
        return snap_name(self.hex, self.base, rootless=self.rootless)


def snap_name(hex_: str, base: str | None, *, rootless: bool) -> str:
    name = hex_ if base is None else f"{hex_}{DELTA_SEP}{base}"
    return name + (ROOTLESS_SUFFIX if rootless else "")


def parse(name: str) -> SnapName | None:
    """The parts of a committed snapshot's name; None for anything else (tmp- directories,
    the "-rootless" snapshots of older stores, stray files)."""
    rootless = name.endswith(ROOTLESS_SUFFIX)
    body = name.removesuffix(ROOTLESS_SUFFIX)
    hex_, sep, base = body.partition(DELTA_SEP)
    if not _is_hex(hex_) or (sep and not _is_hex(base)):
        return None
    return SnapName(hex_, base if sep else None, rootless)


def _is_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def index(names: Iterable[str]) -> dict[tuple[str, bool], SnapName]:
    """For each (layer hex, rootless) the directory that is its snapshot: the full one if
    there is one (nothing to stack), else the first delta by name (two builds may each have
    written one)."""
    out: dict[tuple[str, bool], SnapName] = {}
    for name in sorted(names):
        parsed = parse(name)
        if parsed is None:
            continue
        key = (parsed.hex, parsed.rootless)
        if key not in out or (out[key].base is not None and parsed.base is None):
            out[key] = parsed
    return out


def chain(
    snaps: dict[tuple[str, bool], SnapName], hex_: str, *, rootless: bool
) -> list[str] | None:
    """The directories of layer `hex_`'s snapshot (`snaps`: an `index`), top-most first
    (deltas, then the full one at the bottom); None when there is none, or a base is missing
    (a broken delta is as good as no snapshot: the layer is unpacked again)."""
    out: list[str] = []
    current: str | None = hex_
    while current is not None:
        found = snaps.get((current, rootless))
        if found is None or len(out) >= MAX_CHAIN:
            return None
        out.append(found.name)
        current = found.base
    return out


def needed(names: Iterable[str], keep: set[str] | frozenset[str]) -> set[str]:
    """The names to keep for the layers whose hex is in `keep`: each one's snapshot directories
    and, for a delta, the whole chain below it (whichever layer it belongs to)."""
    present = list(names)
    snaps = index(present)
    out: set[str] = set()
    for name in present:
        parsed = parse(name)
        if parsed is None or parsed.hex not in keep:
            continue
        out.add(name)
        if parsed.base is not None:
            out.update(chain(snaps, parsed.base, rootless=parsed.rootless) or ())
    return out


def broken(names: Iterable[str]) -> list[str]:
    """The deltas among `names` whose chain does not reach a full snapshot (a base removed
    behind gc's back): no reader uses them, fsck removes them."""
    present = list(names)
    snaps = index(present)
    out = []
    for name in present:
        parsed = parse(name)
        if parsed is not None and parsed.base is not None:
            if chain(snaps, parsed.base, rootless=parsed.rootless) is None:
                out.append(name)
    return sorted(out)
