"""The fields of two image configs that differ, named as the config JSON names them.

Compared on the JSON form (config.ImageConfig.to_json), so every field the config carries is
covered without a list to keep up to date: the top-level ones (`created`, `architecture`, ...)
and the container config's (`config.Cmd`, `config.User`, ...). Env and Labels are compared per
variable (`config.Env.PATH`, `config.Labels.version`): one changed variable is one line, not
the whole list twice. ExposedPorts and Volumes are sets; `rootfs` and `history` are the layers'
business (image/layerpairs.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from layerbuild.image.config import ImageConfig

_PER_KEY = ("Env", "Labels")
_SETS = ("ExposedPorts", "Volumes")
_LAYERS = ("rootfs", "history", "config")


@dataclass(frozen=True)
class ConfigChange:
    """One field; `a`/`b` its JSON value in each image (None: absent)."""

    field: str
    a: Any
    b: Any


def compare_configs(a: ImageConfig, b: ImageConfig) -> list[ConfigChange]:
    """The differing fields, in a stable order: the top-level ones, then `config.*`."""
    ja, jb = a.to_json(), b.to_json()
    out = _compare(_top(ja), _top(jb), "")
    out += _compare(_container(ja.get("config", {})), _container(jb.get("config", {})), "config.")
    return out


def _top(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in _LAYERS}


def _container(obj: dict[str, Any]) -> dict[str, Any]:
    """The container config flattened: Env and Labels one entry per key, sets as lists."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "Env":
            for item in value:
                name, _, val = item.partition("=")
                out[f"Env.{name}"] = val
        elif key == "Labels":
            out.update({f"Labels.{k}": v for k, v in value.items()})
        elif key in _SETS:
            out[key] = sorted(value)
        else:
            out[key] = value
    return out


def _compare(a: dict[str, Any], b: dict[str, Any], prefix: str) -> list[ConfigChange]:
    def order(key: str) -> tuple[bool, str]:
        return (key.startswith(_PER_KEY), key)  # whole fields first, then the variables

    return [
        ConfigChange(prefix + key, a.get(key), b.get(key))
        for key in sorted(a.keys() | b.keys(), key=order)
        if a.get(key) != b.get(key)
    ]
