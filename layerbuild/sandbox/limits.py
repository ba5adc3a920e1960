"""Resource limits of RUN steps: `--shm-size` and `--ulimit`, parsed as docker build parses them.

Pure parsing; the sandbox's PID 1 applies the values (child.py: setrlimit before it drops
capabilities, since raising a hard limit needs CAP_SYS_RESOURCE; a tmpfs of that size on
/dev/shm through mounts.default_mounts).

Sizes follow docker's `units.RAMInBytes` (`128m`, `1g`, `512kb`, `1.5GiB`, plain bytes; the
multiples are binary). Ulimits follow `units.ParseUlimit`: `NAME=SOFT[:HARD]`, a missing hard
limit equals the soft one, -1 means unlimited, and only docker's names are taken (`as` is not
one: docker leaves it out on purpose).
"""

from __future__ import annotations

import re
import resource
from dataclasses import dataclass

from layerbuild.errors import LimitSpecError

_RLIMIT_LOCKS = 10  # Linux's RLIMIT_LOCKS, which Python's resource module does not name

# docker's names (go-units ulimit.go) -> setrlimit resources
RLIMITS: dict[str, int] = {
    "core": resource.RLIMIT_CORE,
    "cpu": resource.RLIMIT_CPU,
    "data": resource.RLIMIT_DATA,
    "fsize": resource.RLIMIT_FSIZE,
    "locks": _RLIMIT_LOCKS,
    "memlock": resource.RLIMIT_MEMLOCK,
    "msgqueue": resource.RLIMIT_MSGQUEUE,
    "nice": resource.RLIMIT_NICE,
    "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC,
    "rss": resource.RLIMIT_RSS,
    "rtprio": resource.RLIMIT_RTPRIO,
    "rttime": resource.RLIMIT_RTTIME,
    "sigpending": resource.RLIMIT_SIGPENDING,
    "stack": resource.RLIMIT_STACK,
}

_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_UNITS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}
_INT64_MAX = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class Ulimit:
    """A resource limit for RUN, as `--ulimit name=soft:hard` gives it."""

    name: str  # one of RLIMITS
    soft: int  # -1: unlimited
    hard: int

    @property
    def resource(self) -> int:
        return RLIMITS[self.name]

    def __str__(self) -> str:
        return f"{self.name}={self.soft}:{self.hard}"


def parse_size(text: str) -> int:
    """`128m` -> 134217728 (docker's RAMInBytes: binary multiples, an optional `i`/`b`)."""
    match = _SIZE.match(text.strip())
    if match is None:
        raise LimitSpecError(f"invalid size {text!r}: expected bytes or a number with k, m, g")
    number, unit = match.groups()
    try:
        value = float(number)
    except ValueError:  # "1.2.3" passes docker's pattern but is not a number
        raise LimitSpecError(f"invalid size {text!r}: {number!r} is not a number") from None
    size = int(value * (1024 ** _UNITS[(unit or "").lower()]))
    if size > _INT64_MAX:
        raise LimitSpecError(f"invalid size {text!r}: too large")
    return size


def parse_ulimit(text: str) -> Ulimit:
    """`nofile=1024:2048` -> Ulimit('nofile', 1024, 2048); `nproc=512` -> soft = hard = 512."""
    name, sep, values = text.partition("=")
    if not sep:
        raise LimitSpecError(f"invalid ulimit {text!r}: expected TYPE=SOFT[:HARD]")
    if name not in RLIMITS:
        raise LimitSpecError(
            f"invalid ulimit type {name!r}: use one of {', '.join(sorted(RLIMITS))}"
        )
    parts = values.split(":")
    if len(parts) > 2:
        raise LimitSpecError(
            f"invalid ulimit {text!r}: too many values, can only have up to two, soft[:hard]"
        )
    soft = _limit(parts[0], text)
    hard = _limit(parts[1], text) if len(parts) == 2 else soft
    if hard != -1 and soft > hard:
        raise LimitSpecError(
            f"invalid ulimit {text!r}: the soft limit must be less than or equal to the hard "
            f"limit: {soft} > {hard}"
        )
    if soft == -1 and hard != -1:
        # setrlimit(2) would refuse it (EINVAL) once the step starts: say so now
        raise LimitSpecError(f"invalid ulimit {text!r}: an unlimited soft limit needs hard -1")
    return Ulimit(name, soft, hard)


def _limit(value: str, text: str) -> int:
    if _INTEGER.match(value) is None:
        raise LimitSpecError(f"invalid ulimit {text!r}: {value!r} is not a whole number")
    number = int(value, 10)
    if number < -1:
        raise LimitSpecError(f"invalid ulimit {text!r}: {number} is negative (-1: unlimited)")
    return number


def parse_ulimits(values: tuple[str, ...] | list[str]) -> tuple[Ulimit, ...]:
    """Several --ulimit values; a later one for the same type wins (docker's UlimitOpt is a
    map by name), listed in the order the types first appear."""
    by_name: dict[str, Ulimit] = {}
    for value in values:
        limit = parse_ulimit(value)
        by_name[limit.name] = limit
    return tuple(by_name.values())
