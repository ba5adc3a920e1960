"""--cache-to/--cache-from specs, read as buildx reads them (registry/remotecache/spec.py)."""

from __future__ import annotations

import pytest

from layerbuild.errors import CacheError
from layerbuild.registry.remotecache.spec import parse_cache_spec


@pytest.mark.parametrize(
    ("text", "direction", "kind", "location", "mode"),
    [
        ("type=local,dest=/c,mode=max", "to", "local", "/c", "max"),
        ("type=local,src=/c", "from", "local", "/c", "min"),
        (
            "type=registry,ref=localhost:5000/app:cache",
            "from",
            "registry",
            "localhost:5000/app:cache",
            "min",
        ),
        (
            "ref=localhost:5000/app:cache,mode=max",
            "to",
            "registry",
            "localhost:5000/app:cache",
            "max",
        ),
    ],
)
def test_parse_cache_spec(text: str, direction: str, kind: str, location: str, mode: str) -> None:
    spec = parse_cache_spec(text, direction)
    assert (spec.kind, spec.location, spec.mode) == (kind, location, mode)


@pytest.mark.parametrize(
    "text", ["type=local,src=/c", "type=s3,dest=x", "type=local,dest=/c,mode=all", "dest"]
)
def test_parse_cache_spec_rejects(text: str) -> None:
    with pytest.raises(CacheError):
        parse_cache_spec(text, "to")


@pytest.mark.parametrize(
    ("text", "ignore"),
    [
        ("type=registry,ref=localhost:5000/a:c,ignore-error=true", True),
        ("type=registry,ref=localhost:5000/a:c,ignore-error=1", True),
        ("type=local,dest=/c,mode=max,ignore-error=false", False),
        ("type=local,dest=/c", False),
    ],
)
def test_ignore_error_is_read_as_buildkit_reads_it(text: str, ignore: bool) -> None:
    assert parse_cache_spec(text, "to").ignore_error is ignore


def test_ignore_error_must_be_a_boolean() -> None:
    with pytest.raises(CacheError, match="ignore-error must be true or false"):
        parse_cache_spec("type=local,dest=/c,ignore-error=yes please", "to")
