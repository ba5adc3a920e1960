"""The dataclass code cache: classes are the same with and without it, and only a file this user
owns and nobody else can write is read. Each case runs a fresh interpreter, as a command does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

STATS = "import layerbuild.dockerfile.parser, layerbuild.dataclasscode as d; print(*d.stats())"

# What a class's user can see of it: made, compared, hashed, printed, refused a change.
BEHAVIOUR = """
import dataclasses, inspect
from layerbuild.dockerfile.parser import parse_dockerfile
from layerbuild.dockerfile.source import DockerfileSource
from layerbuild.image.descriptor import Descriptor, Platform
from layerbuild.engine.events import StepDone
text = "FROM busybox AS base\\nRUN echo hi\\nCOPY --chmod=644 a /b\\n"
df = parse_dockerfile(DockerfileSource("Dockerfile", text))
for value in (df, Platform("arm64", variant="v8"), StepDone(3, 1.5, cached=True)):
    print(repr(value))
    print(value == dataclasses.replace(value), hash(value) == hash(dataclasses.replace(value)))
    print(inspect.signature(type(value)), type(value).__init__.__annotations__)
    try:
        setattr(value, dataclasses.fields(value)[0].name, None)
    except Exception as e:
        print("refused:", type(e).__name__, e)
print(Descriptor.__doc__, Descriptor.__match_args__)
"""


def _python(code: str, cache: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LAYERBUILD_CODE_CACHE": cache}
    env["PYTHONHASHSEED"] = "0"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return proc.stdout


def _stats(cache: Path) -> tuple[int, int]:
    loaded, compiled = _python(STATS, str(cache)).split()
    return int(loaded), int(compiled)


def test_code_is_compiled_once_then_read(tmp_path: Path) -> None:
    cache = tmp_path / "codes"
    loaded, compiled = _stats(cache)
    assert loaded == 0 and compiled > 20  # the parser's classes: several methods each
    assert cache.stat().st_mode & 0o777 == 0o600
    assert _stats(cache) == (compiled, 0)


def test_classes_behave_the_same_with_and_without_the_cache(tmp_path: Path) -> None:
    cache = str(tmp_path / "codes")
    without = _python(BEHAVIOUR, "off")
    assert "refused: FrozenInstanceError cannot assign to field 'source'" in without
    assert _python(BEHAVIOUR, cache) == without  # compiled and written
    assert _python(BEHAVIOUR, cache) == without  # read back


def test_off_reads_and_writes_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LAYERBUILD_CODE_CACHE": "off"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    code = "import layerbuild.dockerfile.parser, dataclasses; print(hasattr(dataclasses, 'exec'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["False"]
    assert list(tmp_path.iterdir()) == []


def test_the_file_is_per_user_and_interpreter(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path)}
    env.pop("LAYERBUILD_CODE_CACHE", None)
    subprocess.run([sys.executable, "-c", STATS], env=env, check=True, capture_output=True)
    (name,) = os.listdir(tmp_path / "layerbuild")
    assert name == f"dataclass-code-{sys.implementation.cache_tag}-{sys.hexversion:08x}.marshal"
    assert (tmp_path / "layerbuild").stat().st_mode & 0o777 == 0o700


def test_a_file_others_can_write_is_not_read(tmp_path: Path) -> None:
    cache = tmp_path / "codes"
    _, compiled = _stats(cache)
    cache.chmod(0o666)
    assert _stats(cache) == (0, compiled)


@pytest.mark.root
def test_a_file_of_another_user_is_not_read(tmp_path: Path) -> None:
    cache = tmp_path / "codes"
    _, compiled = _stats(cache)
    os.chown(cache, 65534, 65534)
    assert _stats(cache) == (0, compiled)


def test_a_damaged_file_is_ignored_and_replaced(tmp_path: Path) -> None:
    cache = tmp_path / "codes"
    _, compiled = _stats(cache)
    cache.write_bytes(cache.read_bytes()[:1000])
    cache.chmod(0o600)
    assert _stats(cache) == (0, compiled)
    assert _stats(cache) == (compiled, 0)


def test_other_modules_dataclasses_are_not_cached(tmp_path: Path) -> None:
    code = (
        "import dataclasses, layerbuild.dataclasscode as d\n"
        "before = d.stats()[1]\n"
        "@dataclasses.dataclass(frozen=True)\n"
        "class Mine:\n"
        "    a: int\n"
        "print(before == d.stats()[1], Mine(1) == Mine(1))\n"
    )
    assert _python(code, str(tmp_path / "codes")).split() == ["True", "True"]


def test_a_damaged_entry_is_compiled_again_and_mended(tmp_path: Path) -> None:
    import marshal

    cache = tmp_path / "codes"
    _, compiled = _stats(cache)
    entries = marshal.loads(cache.read_bytes())
    cache.write_bytes(marshal.dumps(dict.fromkeys(entries, b"\xff damaged")))
    assert _stats(cache) == (compiled, compiled)  # read, unusable, compiled
    assert _stats(cache) == (compiled, 0)  # and written back whole
