"""The compiled code of our dataclasses' generated methods, kept in a file between runs.

`@dataclass` writes each class's `__init__`, `__repr__`, `__eq__`, `__hash__` and, frozen,
`__setattr__` and `__delattr__` as source text and compiles it when the class is made: on
Python 3.11 that is six compiles per class, about 1 ms a class on a small machine, and a no-change
build or a dry run imports some 120 of them: a third of its start-up, paid on every command.
The text depends only on the class (its fields and options), so the code compiled from it is
kept in a per-user file and reused; a text not in the file is compiled as before. The file
maps each text to its code marshalled on its own, so that a command unmarshals only the classes
it makes (a tenth of the file, which holds every class any command made).

`dataclasses` calls `exec` through its own module's globals, so install() puts there an `exec`
that compiles through that cache. It does so only for text executed in the namespace of a
layerbuild module; everything else goes to the builtin unchanged. The code is compiled exactly
as `exec(text)` from `dataclasses` compiles it (filename "<string>", no inherited future
flags), so a class is the same with or without the file.

The file holds code, so it is read only when this user owns it and nobody else may write it or
its directory, and it is keyed by the interpreter's exact version. A file that cannot be read
or parsed is ignored and replaced. `LAYERBUILD_CODE_CACHE` names another file, or `off`.
"""

import builtins
import marshal
import os
import sys
from types import CodeType
from typing import Any

_FILENAME = "<string>"  # what exec(str) gives its code
_MAX_ENTRIES = 4000  # more: keep only what this process used (old versions' classes go)

_stored: dict[str, bytes] = {}  # the file: text -> its code, marshalled
_codes: dict[str, CodeType] = {}  # compiled in this process
_used: set[str] = set()
_compiled = 0
_path = ""
_owner_pid = 0
_read = False


def cache_path() -> str:
    """The file for this user and interpreter ('' when off)."""
    named = os.environ.get("LAYERBUILD_CODE_CACHE", "")
    if named == "off":
        return ""
    if named:
        return named
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    tag = f"{sys.implementation.cache_tag}-{sys.hexversion:08x}"
    return os.path.join(base, "layerbuild", f"dataclass-code-{tag}.marshal")


def install() -> None:
    """Load the file and route `dataclasses`' compiles through it (once per process)."""
    global _path, _owner_pid
    import dataclasses

    if _path or getattr(dataclasses, "exec", None) is _exec:
        return
    _path = cache_path()
    if not _path:
        return
    _owner_pid = os.getpid()
    # Module globals are looked up before builtins: this is the name _create_fn calls.
    dataclasses.exec = _exec  # type: ignore[attr-defined]


def stats() -> tuple[int, int]:
    """(entries read from the file, texts compiled in this process)."""
    return len(_stored), _compiled


def _loaded() -> dict[str, bytes]:
    """The file's entries, read when the first class is made: `build` forks its context
    walkers before, and the less it does before that fork, the sooner they start."""
    global _read
    if not _read:
        _read = True
        _stored.update(_load(_path))
    return _stored


def _exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:
    if (
        isinstance(source, str)
        and isinstance(globals, dict)
        and str(globals.get("__name__", "")).startswith("layerbuild.")
    ):
        source = _code(source)
    builtins.exec(source, globals, locals)


def _code(text: str) -> CodeType:
    global _compiled
    code = _codes.get(text) or _unmarshalled(_loaded().get(text))  # the file's: not kept
    if code is None:
        code = compile(text, _FILENAME, "exec", dont_inherit=True)
        if not _compiled:
            import atexit

            atexit.register(_save)
        _codes[text] = code
        _compiled += 1
    _used.add(text)
    return code


def _unmarshalled(raw: bytes | None) -> CodeType | None:
    if raw is None:
        return None
    try:
        code = marshal.loads(raw)
    except (EOFError, ValueError, TypeError):
        return None  # a damaged entry: compiled again
    return code if isinstance(code, CodeType) else None


def _load(path: str) -> dict[str, bytes]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        if not _trusted(os.fstat(fd)) or not _trusted(os.stat(os.path.dirname(path) or ".")):
            return {}
        with os.fdopen(fd, "rb", closefd=False) as f:
            loaded = marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    finally:
        os.close(fd)
    if not isinstance(loaded, dict):
        return {}
    return {k: v for k, v in loaded.items() if isinstance(k, str) and isinstance(v, bytes)}


def _trusted(st: os.stat_result) -> bool:
    """Owned by this user and writable by nobody else (its code is run)."""
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _save() -> None:
    """Write the file again when this process compiled something new (at exit)."""
    if os.getpid() != _owner_pid or not _path:
        return  # a forked child exiting: the parent writes it
    # compiled here: not in the file, or damaged there
    keep = {**_stored, **{t: marshal.dumps(c) for t, c in _codes.items()}}
    if len(keep) > _MAX_ENTRIES:
        keep = {t: keep[t] for t in _used}
    directory = os.path.dirname(_path) or "."
    tmp = f"{_path}.{os.getpid()}.tmp"
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not _trusted(os.stat(directory)):
            return
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(marshal.dumps(keep))
        os.replace(tmp, _path)
    except (OSError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass
