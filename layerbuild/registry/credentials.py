"""Registry credentials as docker keeps them: ``$DOCKER_CONFIG/config.json`` (default
``~/.docker/config.json``).

Lookup order for a registry, as docker's cli/config/credentials does it:

1. ``credHelpers[<registry>]``: run ``docker-credential-<helper> get`` with the server URL on
   stdin; it prints ``{"Username": ..., "Secret": ...}`` (Username ``<token>`` means the secret is
   an OAuth2 identity/refresh token);
2. ``credsStore``: the same with the default helper;
3. ``auths[<registry>].auth``: base64 of ``user:password`` (or ``identitytoken``).

Docker Hub is filed under the legacy key ``https://index.docker.io/v1/``; other registries under
``host[:port]``, though older docker versions wrote ``https://host`` keys, which are also read.

Secrets never reach a repr, a log line or an error message: `Credentials` hides them, and a
failing helper is reported by name and exit status only (its output may echo the secret).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerbuild.errors import RegistryError

DOCKER_HUB = "docker.io"
HUB_CONFIG_KEY = "https://index.docker.io/v1/"
_TOKEN_USER = "<token>"
_HELPER_TIMEOUT = 60
_NOT_FOUND = "credentials not found"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and a secret (password, or an identity token when `identity_token`)."""

    username: str
    secret: str = field(repr=False)
    identity_token: bool = False

    def __repr__(self) -> str:
        kind = "identity_token" if self.identity_token else "password"
        return f"Credentials(username={self.username!r}, {kind}=<redacted>)"

    def basic(self) -> str:
        """The value of an HTTP `Authorization: Basic` header."""
        raw = f"{self.username}:{self.secret}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """$DOCKER_CONFIG/config.json, else ~/.docker/config.json."""
    env = os.environ if environ is None else environ
    base = env.get("DOCKER_CONFIG")
    if base:
        return Path(base) / "config.json"
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".docker" / "config.json"


def config_key(registry: str) -> str:
    """The key a registry is filed under in config.json."""
    return HUB_CONFIG_KEY if registry == DOCKER_HUB else registry


def _normalize_key(key: str) -> str:
    """'https://host:5000/v1/' -> 'host:5000'; the Hub's legacy URL -> docker.io."""
    bare = key.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    if bare in ("index.docker.io", "registry-1.docker.io", "docker.io"):
        return DOCKER_HUB
    return bare


def _read_config(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise RegistryError(
            f"cannot read the docker config {path}: {e}",
            hint="fix the JSON in that file, or point $DOCKER_CONFIG at another directory",
        ) from e
    if not isinstance(obj, dict):
        raise RegistryError(f"the docker config {path} is not a JSON object")
    return obj


def _write_config(path: Path, obj: dict[str, Any]) -> None:
    """Replace config.json atomically, readable by its owner only (it holds secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    data = json.dumps(obj, indent="\t").encode() + b"\n"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _helper_for(config: Mapping[str, Any], registry: str) -> str | None:
    helpers = config.get("credHelpers") or {}
    for key, name in helpers.items():
        if _normalize_key(key) == registry and name:
            return str(name)
    store = config.get("credsStore")
    return str(store) if store else None


def _run_helper(helper: str, action: str, stdin: str) -> str | None:
    """Run docker-credential-<helper> <action>; None when it has no entry for the server."""
    program = f"docker-credential-{helper}"
    try:
        proc = subprocess.run(
            [program, action],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=_HELPER_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise RegistryError(
            f"the credential helper {program} named in the docker config is not installed",
            hint="install it, or remove it from credHelpers/credsStore in the docker config",
        ) from None
    except subprocess.TimeoutExpired:
        raise RegistryError(f"the credential helper {program} {action} timed out") from None
    if proc.returncode != 0:
        if _NOT_FOUND in proc.stdout.lower() or _NOT_FOUND in proc.stderr.lower():
            return None
        # its output is not shown: helpers may echo what they were given
        raise RegistryError(
            f"the credential helper {program} {action} failed (exit status {proc.returncode})",
            hint=f"run `{program} list` to check that the helper works",
        )
    return proc.stdout


def _from_helper(helper: str, registry: str) -> Credentials | None:
    out = _run_helper(helper, "get", config_key(registry))
    if out is None:
        return None
    try:
        obj = json.loads(out)
        username, secret = str(obj["Username"]), str(obj["Secret"])
    except (ValueError, KeyError, TypeError):
        raise RegistryError(
            f"the credential helper docker-credential-{helper} printed something that is not "
            "its JSON answer"
        ) from None
    if not secret:
        return None
    return Credentials(username, secret, identity_token=username == _TOKEN_USER)


def _from_auths(config: Mapping[str, Any], registry: str, path: Path) -> Credentials | None:
    for key, entry in (config.get("auths") or {}).items():
        if _normalize_key(key) != registry or not isinstance(entry, dict):
            continue
        if entry.get("identitytoken"):
            user = _decode_auth(entry, path)[0] if entry.get("auth") else _TOKEN_USER
            return Credentials(user, str(entry["identitytoken"]), identity_token=True)
        if entry.get("auth"):
            user, password = _decode_auth(entry, path)
            return Credentials(user, password)
        if entry.get("username") and entry.get("password"):
            return Credentials(str(entry["username"]), str(entry["password"]))
    return None


def _decode_auth(entry: Mapping[str, Any], path: Path) -> tuple[str, str]:
    try:
        user, sep, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        sep = ""
    if not sep:
        raise RegistryError(
            f"an 'auth' entry in {path} is not base64 of user:password",
            hint="run `layerbuild login` again for that registry",
        )
    return user, password


def lookup(registry: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """The stored credentials for `registry` (host[:port], or docker.io), or None."""
    path = config_path(environ)
    config = _read_config(path)
    helper = _helper_for(config, registry)
    if helper is not None:
        found = _from_helper(helper, registry)
        if found is not None:
            return found
    return _from_auths(config, registry, path)


def store(registry: str, creds: Credentials, environ: Mapping[str, str] | None = None) -> Path:
    """Save credentials (in the credential helper if one is configured); returns config.json."""
    path = config_path(environ)
    config = _read_config(path)
    helper = _helper_for(config, registry)
    if helper is not None:
        payload = {"ServerURL": config_key(registry), "Username": creds.username}
        payload["Secret"] = creds.secret
        _run_helper(helper, "store", json.dumps(payload))
        return path
    auths = config.setdefault("auths", {})
    for key in [k for k in auths if _normalize_key(k) == registry]:
        del auths[key]
    raw = f"{creds.username}:{creds.secret}".encode()
    auths[config_key(registry)] = {"auth": base64.b64encode(raw).decode("ascii")}
    _write_config(path, config)
    return path


def erase(registry: str, environ: Mapping[str, str] | None = None) -> bool:
    """Forget the credentials of `registry`; False when none were stored."""
    path = config_path(environ)
    config = _read_config(path)
    found = False
    helper = _helper_for(config, registry)
    if helper is not None and _run_helper(helper, "erase", config_key(registry)) is not None:
        found = True
    auths = config.get("auths") or {}
    keys = [k for k in auths if _normalize_key(k) == registry]
    for key in keys:
        del auths[key]
    if keys:
        _write_config(path, config)
    return found or bool(keys)
