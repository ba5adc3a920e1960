from __future__ import annotations

import pytest

from layerbuild.engine.chmod import parse_chmod
from layerbuild.errors import BuildError


@pytest.mark.parametrize(
    ("spec", "before", "is_dir", "after"),
    [
        ("755", 0o644, False, 0o755),
        ("a+X", 0o644, False, 0o644),
        ("a+X", 0o644, True, 0o755),
        ("a+X", 0o744, False, 0o755),
        ("go=u", 0o640, False, 0o666),
        ("u+s,o+t", 0o755, True, 0o5755),
        ("=r", 0o777, False, 0o444),
    ],
)
def test_parse_chmod(spec: str, before: int, is_dir: bool, after: int) -> None:
    assert parse_chmod(spec).apply(before, is_dir=is_dir) == after


@pytest.mark.parametrize("bad", ["", "9", "u+q", "rwx", "17777"])
def test_parse_chmod_rejects(bad: str) -> None:
    with pytest.raises(BuildError, match="invalid --chmod"):
        parse_chmod(bad)
