"""What every fault mode of bench/chaos.py checks after a command met a fault.

The store holds no blob whose bytes do not hash to its name; the names it had before still point
where they pointed; the command ended with one of our messages (never a Python traceback).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass
class FaultTally:
    """The figures a fault mode prints; the run passes when the last four are 0."""

    faults: int = 0  # faults injected (disk: commands run short of space; registry: proxy faults)
    commands: int = 0
    failed: int = 0  # commands that ended with an error (a clean one is fine)
    unverified: int = 0  # blobs whose bytes do not hash to their name
    tracebacks: int = 0
    lost_names: int = 0  # names that moved or vanished under a failed command
    not_recovered: int = 0  # the command, run again without the fault, still failed
    exits: dict[int, int] = field(default_factory=dict)

    def line(self) -> str:
        exits = ", ".join(f"{code}: {n}" for code, n in sorted(self.exits.items()))
        return (
            f"faults {self.faults}, commands {self.commands}, failed {self.failed} "
            f"(exit {{{exits}}}), blobs that do not verify {self.unverified}, tracebacks "
            f"{self.tracebacks}, names lost {self.lost_names}, not recovered {self.not_recovered}"
        )

    @property
    def clean(self) -> bool:
        return not (self.unverified or self.tracebacks or self.lost_names or self.not_recovered)


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SOURCE_DATE_EPOCH",)}
    env["PYTHONPATH"] = str(REPO)
    return env


def layerbuild(store: Path, *args: str | Path) -> list[str]:
    return [sys.executable, "-m", "layerbuild", "--root", str(store), *map(str, args)]


def run_cli(
    store: Path, *args: str | Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        layerbuild(store, *args),
        capture_output=True,
        text=True,
        env=environment(),
        timeout=timeout,
    )


def names(store: Path) -> dict[str, str]:
    """name -> digest, read straight from the store's index.json (no store code involved)."""
    try:
        index = json.loads((store / "index.json").read_text())
    except FileNotFoundError:
        return {}
    found = {}
    for entry in index.get("manifests", []):
        name = (entry.get("annotations") or {}).get(REF_NAME)
        if name:
            found[name] = entry["digest"]
    return found


def unverified_blobs(store: Path) -> list[str]:
    """Blobs under blobs/sha256 whose content does not hash to their file name."""
    bad = []
    for path in sorted((store / "blobs" / "sha256").glob("*")):
        if len(path.name) != 64 or not path.is_file():
            continue
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        if h.hexdigest() != path.name:
            bad.append(path.name)
    return bad


def account(
    tally: FaultTally,
    proc: subprocess.CompletedProcess[str],
    store: Path,
    before: dict[str, str],
    *,
    changes: frozenset[str] = frozenset(),
    label: str,
) -> None:
    """Count one command that met a fault; print what was wrong with what it left."""
    tally.commands += 1
    if proc.returncode != 0:
        tally.failed += 1
        tally.exits[proc.returncode] = tally.exits.get(proc.returncode, 0) + 1
        lines = proc.stderr.strip().splitlines() or ["(no message)"]
        message = next((line for line in lines if line.startswith("error")), lines[-1])
        print(f"{label}: exit {proc.returncode}: {message[:300]}")
    if "Traceback (most recent call last)" in proc.stderr:
        tally.tracebacks += 1
        print(f"{label}: traceback:\n{proc.stderr[-2000:]}")
    bad = unverified_blobs(store)
    if bad:
        tally.unverified += len(bad)
        print(f"{label}: blobs that do not verify: {bad}")
        # counted once: repaired so that the next faults start from a sound store
        run_cli(store, "fsck", "--repair")
    after = names(store)
    lost = [n for n, d in before.items() if n not in changes and after.get(n) != d]
    if lost:
        tally.lost_names += len(lost)
        print(f"{label}: names lost or moved: {lost}")


def recovered(tally: FaultTally, proc: subprocess.CompletedProcess[str], label: str) -> bool:
    if proc.returncode == 0:
        return True
    tally.not_recovered += 1
    print(
        f"{label}: failed again without the fault (exit {proc.returncode}): {proc.stderr[-800:]}"
    )
    return False
