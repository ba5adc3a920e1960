"""What a --cache-to or --cache-from says (CacheSpec, parsed as buildx parses it), and what
became of it (CacheTransfer, an event of the build that engine/events re-exports)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from layerbuild.errors import CacheError
from layerbuild.registry.reference import parse_reference

# BuildKit reads ignore-error with Go's strconv.ParseBool
_BOOLS = dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True) | dict.fromkeys(
    ("0", "f", "F", "FALSE", "false", "False"), False
)


@dataclass(frozen=True, slots=True)
class CacheSpec:
    """One --cache-to or --cache-from: `type=local` (a directory) or `type=registry` (a ref)."""

    kind: str  # "local" | "registry"
    location: str  # DIR or REPO:TAG
    mode: str = "min"  # export only: "min" | "max"
    ignore_error: bool = False  # export only: a failed export is a warning

    def __str__(self) -> str:
        return f"type={self.kind} {self.location}"


def parse_cache_spec(text: str, direction: str) -> CacheSpec:
    """Parse `type=local,dest=DIR[,mode=max]` (direction "to") or `type=local,src=DIR`
    (direction "from"); `type=registry,ref=REF[,mode=...]` for either."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise CacheError(f"--cache-{direction} {text!r}: {part!r} is not KEY=VALUE")
        fields[name.strip()] = value.strip()
    kind = fields.pop("type", "registry" if "ref" in fields else "")
    where = {"local": "dest" if direction == "to" else "src", "registry": "ref"}.get(kind)
    if where is None:
        raise CacheError(
            f"--cache-{direction} {text!r}: type must be local or registry",
            hint=f"e.g. --cache-{direction} type=local,"
            f"{'dest' if direction == 'to' else 'src'}=DIR",
        )
    location = fields.pop(where, "")
    mode = fields.pop("mode", "min")
    ignore = _BOOLS.get(fields.pop("ignore-error", "false"))
    if ignore is None:
        raise CacheError(
            f"--cache-{direction} {text!r}: ignore-error must be true or false",
            hint=f"e.g. --cache-{direction} type={kind},{where}=...,ignore-error=true",
        )
    if not location or mode not in ("min", "max") or fields:
        raise CacheError(
            f"--cache-{direction} {text!r}: type={kind} needs {where}=... "
            f"(and optionally mode=min|max); unknown: {', '.join(fields) or 'none'}",
            hint=f"e.g. --cache-{direction} type={kind},{where}="
            f"{'DIR' if kind == 'local' else 'registry.example/app:buildcache'}",
        )
    if kind == "registry":
        parse_reference(location)  # a bad reference fails now, not after the build
    return CacheSpec(kind, location, mode, ignore and direction == "to")


@dataclass(frozen=True, slots=True)
class CacheTransfer:
    """What became of one --cache-from (direction "import") or --cache-to ("export")."""

    direction: str  # "import" | "export"
    ref: str  # the registry reference or the directory
    status: str  # "imported" | "exported" | "none" (nothing there yet) | "failed"
    records: int = 0
    reason: str = ""  # why it failed; "" otherwise


Note = Callable[[str], None]
Outcome = Callable[[CacheTransfer], None]
