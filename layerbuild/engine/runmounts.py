"""RUN --mount: the flag parsed into values (BuildKit's syntax), keyed, and made into mounts.

Syntax (BuildKit frontend/dockerfile/instructions/commands_runmount.go): a CSV list of
``key=value`` fields; ``type`` defaults to ``bind``; ``ro``/``rw``/``required`` may be given
bare; ``src``/``dst``/``destination`` are aliases. A relative target is taken relative to the
step's WORKDIR, as BuildKit does.

- ``type=cache``: a directory kept in ``<store>/cache/mounts/<id>`` across builds (id defaults
  to the target). ``sharing=shared`` (default) lets concurrent builds use it at once,
  ``locked`` waits for an exclusive flock, ``private`` uses a fresh empty directory when another
  step holds the cache. ``from=``/``source=`` seed a new cache from a stage or image.
- ``type=secret``: the file registered with ``--secret id=ID,src=PATH`` (BuildOptions.secrets),
  bind-mounted read-only from a private copy at ``/run/secrets/ID``. With ``env=NAME`` (Dockerfile
  1.10) the content is the value of the variable NAME in the step's environment instead, and a
  file only when ``target=`` is given too (BuildKit convert_secrets.go). Only the mount spec is
  part of the cache key, never the content (BuildKit does the same: changing a secret does not
  invalidate a step).
- ``type=bind``: the build context (or ``from=`` a stage, named context or image), read-only
  unless ``rw``, in which case the step writes into a throwaway copy.
- ``type=tmpfs``: a fresh tmpfs (``size=`` bytes, or with a k/m/g suffix).
- ``type=ssh``: a socket forwarding to the SSH agent given with ``--ssh ID=SOCKET`` (id defaults
  to ``default``), at ``/run/buildkit/ssh_agent.N`` (N counts the step's ssh mounts) unless a
  target is given; SSH_AUTH_SOCK names the first one (engine/sshforward.py). Only the spec is
  keyed, never the agent's keys.

Nothing mounted enters the layer: the sandbox removes the mount points it had to create
(runner.py), and what the command writes below a mount lands in the mounted directory.
runmounts_prepare.py turns these values into cache-key inputs and sandbox mounts.
"""

from __future__ import annotations

import csv
import dataclasses
import posixpath
import re
from dataclasses import dataclass

from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.shell import expand_word
from layerbuild.errors import DockerfileError, ShellExpansionError

SHARING = ("shared", "private", "locked")
SECRETS_DIR = "/run/secrets"
_TRUE = ("", "true", "1")
_FALSE = ("false", "0")
_SIZE_RE = re.compile(r"^(\d+)([kmg]?)b?$", re.IGNORECASE)
_ALIASES = {
    "src": "source",
    "dst": "target",
    "destination": "target",
    "ro": "readonly",
    "rw": "readwrite",
}
_KEYS = {
    "bind": {"target", "source", "from", "readonly", "readwrite"},
    "cache": {
        "target",
        "id",
        "sharing",
        "from",
        "source",
        "mode",
        "uid",
        "gid",
        "readonly",
        "readwrite",
    },
    "secret": {"target", "id", "required", "mode", "uid", "gid", "env"},
    "tmpfs": {"target", "size"},
    "ssh": {"target", "id", "required", "mode", "uid", "gid"},
}
SSH_TARGET = "/run/buildkit/ssh_agent.{}"


@dataclass(frozen=True, slots=True)
class CacheMount:
    """`RUN --mount=type=cache`: a directory kept between builds."""

    target: str
    id: str
    sharing: str = "shared"
    from_: str | None = None
    source: str = "/"
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    readonly: bool = False


@dataclass(frozen=True, slots=True)
class SecretMount:
    """`RUN --mount=type=secret`: a file handed to the RUN, never stored."""

    id: str
    target: str | None  # None: no file, the secret is only the variable `env`
    required: bool = False
    mode: int = 0o400
    uid: int = 0
    gid: int = 0
    env: str | None = None  # the environment variable that holds the secret in the step


@dataclass(frozen=True, slots=True)
class BindMount:
    """`RUN --mount=type=bind`: a read-only view of the context or another stage."""

    target: str
    source: str = "/"
    from_: str | None = None
    readwrite: bool = False


@dataclass(frozen=True, slots=True)
class TmpfsMount:
    """`RUN --mount=type=tmpfs`: an empty memory filesystem for the RUN."""

    target: str
    size: int | None = None  # bytes; None: the kernel's default (half of RAM)


@dataclass(frozen=True, slots=True)
class SshMount:
    """`RUN --mount=type=ssh`: the host's ssh agent socket, forwarded."""

    id: str
    target: str
    required: bool = False
    mode: int = 0o600
    uid: int = 0
    gid: int = 0


RunMount = CacheMount | SecretMount | BindMount | TmpfsMount | SshMount


class _Bad(Exception):
    """A field is wrong; turned into a DockerfileError naming the instruction's line."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def parse_mounts(
    instr: ins.Run,
    workdir: str = "/",
    env: dict[str, str] | None = None,
    *,
    file: str = "Dockerfile",
) -> tuple[RunMount, ...]:
    """The --mount flags of `instr`, expanded with `env` (ARGs and ENV, as BuildKit expands
    flags), targets resolved against `workdir`. DockerfileError names the line on any error."""
    out: list[RunMount] = []
    for spec in instr.mounts:
        try:
            words = expand_word(spec, env) if env is not None else spec
            mount = parse_mount(words, workdir)
            if isinstance(mount, SshMount) and not mount.target:
                count = sum(isinstance(m, SshMount) for m in out)
                mount = dataclasses.replace(mount, target=SSH_TARGET.format(count))
            out.append(mount)
            _check_targets(out)
        except _Bad as e:
            raise _error(instr, spec, str(e), e.hint, file) from None
        except ShellExpansionError as e:
            raise _error(instr, spec, e.message, e.hint, file) from None
    return tuple(out)


def _error(
    instr: ins.Run, spec: str, message: str, hint: str | None, file: str
) -> DockerfileError:
    return DockerfileError(
        f"RUN --mount={spec}: {message}",
        file=file,
        line=instr.span.start_line,
        source_line=instr.original,
        hint=hint,
    )


def parse_mount(spec: str, workdir: str = "/") -> RunMount:
    """One --mount value; raises _Bad (callers outside this module use parse_mounts)."""
    fields = _fields(spec)
    kind = fields.pop("type", "bind")
    if kind not in _KEYS:
        raise _Bad(f"unknown mount type {kind!r}", "use type=bind, cache, secret, ssh or tmpfs")
    unknown = sorted(set(fields) - _KEYS[kind])
    if unknown:
        raise _Bad(
            f"unknown key {unknown[0]!r} for type={kind}",
            f"type={kind} takes {', '.join(sorted(_KEYS[kind]))}",
        )
    if kind == "secret":
        return _secret(fields, workdir)
    if kind == "ssh":
        target = fields.get("target") or ""
        return SshMount(
            fields.get("id") or "default",
            _absolute(target, workdir) if target else "",
            _bool(fields, "required", False),
            _mode(fields.get("mode"), 0o600),
            _int(fields, "uid"),
            _int(fields, "gid"),
        )
    if "target" not in fields or not fields["target"]:
        raise _Bad(f"type={kind} needs target=PATH", "name where to mount it: target=/path")
    target = _absolute(fields["target"], workdir)
    if kind == "tmpfs":
        return TmpfsMount(target, _size(fields["size"]) if "size" in fields else None)
    readonly = _readonly(fields, default=kind == "bind")
    if kind == "bind":
        return BindMount(
            target, fields.get("source", "/") or "/", fields.get("from"), not readonly
        )
    sharing = fields.get("sharing", "shared")
    if sharing not in SHARING:
        raise _Bad(f"sharing={sharing!r} is not one of {', '.join(SHARING)}")
    return CacheMount(
        target,
        fields.get("id") or target,
        sharing,
        fields.get("from"),
        fields.get("source", "/") or "/",
        _mode(fields.get("mode"), 0o755),
        _int(fields, "uid"),
        _int(fields, "gid"),
        readonly,
    )


def _fields(spec: str) -> dict[str, str]:
    try:
        parts = next(csv.reader([spec]), [])
    except csv.Error as e:
        raise _Bad(f"cannot split the fields: {e}") from None
    fields: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.strip().partition("=")
        key = key.strip().lower()
        if not key:
            continue
        key = _ALIASES.get(key, key)
        if not sep and key not in ("readonly", "readwrite", "required"):
            raise _Bad(f"field {part!r} is not key=value")
        fields[key] = value.strip()
    return fields


def _secret(fields: dict[str, str], workdir: str) -> SecretMount:
    target = fields.get("target") or ""
    secret_id = fields.get("id") or (posixpath.basename(target) if target else "")
    if not secret_id:
        raise _Bad("type=secret needs id=ID", "name the secret given to --secret id=ID,src=PATH")
    env = _env_name(fields["env"]) if "env" in fields else None
    if target:
        path: str | None = _absolute(target, workdir)
    else:
        # as BuildKit: a secret for a variable is a file too only when target= asks for one
        path = None if env is not None else f"{SECRETS_DIR}/{secret_id}"
    return SecretMount(
        secret_id,
        path,
        _bool(fields, "required", False),
        _mode(fields.get("mode"), 0o400),
        _int(fields, "uid"),
        _int(fields, "gid"),
        env,
    )


def _env_name(name: str) -> str:
    if not name or "=" in name or "\0" in name:
        raise _Bad(
            f"env={name!r} is not a variable name",
            "name the variable that should hold the secret: env=TOKEN",
        )
    return name


def _absolute(target: str, workdir: str) -> str:
    path = posixpath.normpath(posixpath.join("/", workdir, target))
    if path == "/":
        raise _Bad("cannot mount over /", "mount on a directory below /")
    return path


def _readonly(fields: dict[str, str], *, default: bool) -> bool:
    if "readonly" in fields and "readwrite" in fields:
        raise _Bad("give only one of ro and rw")
    if "readonly" in fields:
        return _bool(fields, "readonly", True)
    if "readwrite" in fields:
        return not _bool(fields, "readwrite", True)
    return default


def _bool(fields: dict[str, str], key: str, default: bool) -> bool:
    if key not in fields:
        return default
    value = fields[key].lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _Bad(f"{key}={fields[key]!r} is not true or false")


def _int(fields: dict[str, str], key: str) -> int:
    value = fields.get(key, "0")
    if not value.isdigit():
        raise _Bad(
            f"{key}={value!r} is not a number", f"give a numeric {key}; names are not resolved"
        )
    return int(value)


def _mode(value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        mode = int(value, 8)
    except ValueError:
        raise _Bad(f"mode={value!r} is not an octal mode", "write it like mode=0755") from None
    if not 0 <= mode <= 0o7777:
        raise _Bad(f"mode={value!r} is out of range")
    return mode


def _size(value: str) -> int:
    m = _SIZE_RE.match(value)
    if m is None:
        raise _Bad(f"size={value!r} is not a size", "give bytes, or a number with k, m or g")
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]


def _check_targets(mounts: list[RunMount]) -> None:
    targets = [m.target for m in mounts if m.target is not None]
    if len(set(targets)) != len(targets):
        raise _Bad(
            f"another --mount of this RUN has the target {targets[-1]}",
            "give each mount its own target",
        )
    names = [m.env for m in mounts if isinstance(m, SecretMount) and m.env is not None]
    if len(set(names)) != len(names):
        raise _Bad(
            f"another --mount of this RUN sets the variable {names[-1]}",
            "give each secret its own env=NAME",
        )


def describe(mount: RunMount) -> dict[str, object]:
    """What identifies a mount in a cache key and in `layerbuild history` (no secret data)."""
    if isinstance(mount, CacheMount):
        return {
            "type": "cache",
            "target": mount.target,
            "id": mount.id,
            "sharing": mount.sharing,
            "from": mount.from_,
            "source": mount.source,
            "mode": mount.mode,
            "uid": mount.uid,
            "gid": mount.gid,
            "ro": mount.readonly,
        }
    if isinstance(mount, SecretMount):
        item: dict[str, object] = {
            "type": "secret",
            "id": mount.id,
            "target": mount.target,
            "required": mount.required,
            "mode": mount.mode,
            "uid": mount.uid,
            "gid": mount.gid,
        }
        if mount.env is not None:  # absent otherwise: file secrets keep their keys
            item["env"] = mount.env
        return item
    if isinstance(mount, SshMount):
        return {
            "type": "ssh",
            "id": mount.id,
            "target": mount.target,
            "required": mount.required,
            "mode": mount.mode,
            "uid": mount.uid,
            "gid": mount.gid,
        }
    if isinstance(mount, BindMount):
        return {
            "type": "bind",
            "target": mount.target,
            "source": mount.source,
            "from": mount.from_,
            "rw": mount.readwrite,
        }
    return {"type": "tmpfs", "target": mount.target, "size": mount.size}

