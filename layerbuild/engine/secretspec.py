"""`build --secret` values as docker buildx reads them, and where each secret comes from.

Parsing is docker/buildx util/buildflags/secrets.go (`Secret.UnmarshalText`, as buildctl's
cmd/buildctl/build/secret.go): CSV fields `key=value`, keys case-insensitive; `id`, `src` (or
`source`) for a file, `env` for an environment variable, and `type=file|env`, where `type=env`
makes a `src` the name of the variable. `id` is required: nothing defaults it.

The source follows moby/buildkit session/secrets/secretsprovider/store.go: a secret with
neither `src` nor `env` is the environment variable named like its id if that variable is
set (even empty), else the file named like its id; given `env`, the secret is the variable's
value (the empty string when it is not set), which wins over a `src` given too.

Pure: the environment is passed in; cli/options.py reads the files.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from layerbuild.errors import SecretSpecError

_TYPES = ("file", "env")


@dataclass(frozen=True)
class SecretSpec:
    """One --secret: its id and where it is read from ('' = not given, as in buildx)."""

    id: str
    src: str = ""  # a file path
    env: str = ""  # an environment variable name


def parse_secret_spec(value: str) -> SecretSpec:
    """`id=ID[,src=PATH][,env=VAR][,type=file|env]` -> SecretSpec; SecretSpecError as buildx."""
    try:
        fields = next(csv.reader([value], strict=True), [])
    except csv.Error as e:
        raise SecretSpecError(f"failed to parse csv secret: {e}") from None
    spec = {"id": "", "src": "", "env": ""}
    kind = ""
    for field in fields:
        key, sep, val = field.partition("=")
        if not sep:
            raise SecretSpecError(f"invalid field {field!r} must be a key=value pair")
        key = key.lower()
        if key == "type":
            if val not in _TYPES:
                raise SecretSpecError(f"unsupported secret type {val!r}")
            kind = val
        elif key in ("id", "env"):
            spec[key] = val
        elif key in ("src", "source"):
            spec["src"] = val
        else:
            raise SecretSpecError(f"unexpected key {key!r} in {field!r}")
    if kind == "env" and not spec["env"]:
        spec["env"], spec["src"] = spec["src"], ""
    if not spec["id"]:
        raise SecretSpecError("secret missing ID")
    return SecretSpec(**spec)


def with_source(spec: SecretSpec, environ: Mapping[str, str]) -> SecretSpec:
    """`spec` with its source settled: neither src nor env means the variable named like the
    id when `environ` holds it, else the file named like the id (secretsprovider.NewStore)."""
    if spec.src or spec.env:
        return spec
    if spec.id in environ:
        return dataclasses.replace(spec, env=spec.id)
    return dataclasses.replace(spec, src=spec.id)


def env_value(spec: SecretSpec, environ: Mapping[str, str]) -> str | None:
    """The secret's value when it comes from a variable (GetSecret's os.Getenv: '' when the
    variable is not set); None when it is read from the file `spec.src`."""
    return environ.get(spec.env, "") if spec.env else None
