"""--secret values as docker buildx parses them, sources as BuildKit's secrets store picks."""

from __future__ import annotations

import pytest

from layerbuild.engine.secretspec import (
    SecretSpec,
    env_value,
    parse_secret_spec,
    with_source,
)
from layerbuild.errors import SecretSpecError


@pytest.mark.parametrize(
    ("value", "spec"),
    [
        ("id=a,src=/f", SecretSpec("a", src="/f")),
        ("id=a,source=/f", SecretSpec("a", src="/f")),
        ("ID=a,SRC=/f", SecretSpec("a", src="/f")),  # keys are case-insensitive
        ("id=a,env=V", SecretSpec("a", env="V")),
        ("id=a", SecretSpec("a")),
        ("id=a,type=env,src=V", SecretSpec("a", env="V")),  # type=env: src names a variable
        ("id=a,type=env,env=V,src=/f", SecretSpec("a", src="/f", env="V")),
        ("id=a,type=file,src=/f", SecretSpec("a", src="/f")),
        ("id=a,type=env", SecretSpec("a")),
        ('id=a,"src=/x,y"', SecretSpec("a", src="/x,y")),  # CSV quoting
        ("id=a,src=/f,id=b", SecretSpec("b", src="/f")),  # a repeated key: the last one
        ("id=a=b,src=/f", SecretSpec("a=b", src="/f")),
    ],
)
def test_parse(value: str, spec: SecretSpec) -> None:
    assert parse_secret_spec(value) == spec


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("src=/f", "secret missing ID"),  # no id from src's name, as in buildx
        ("env=V", "secret missing ID"),
        ("id=", "secret missing ID"),
        ("id=a,type=dir", "unsupported secret type 'dir'"),
        ("id=a,mode=0400", "unexpected key 'mode'"),
        ("id=a,src", "must be a key=value pair"),
    ],
)
def test_parse_refuses(value: str, message: str) -> None:
    with pytest.raises(SecretSpecError, match=message):
        parse_secret_spec(value)


def test_neither_src_nor_env_is_the_variable_if_set_else_the_file() -> None:
    """secretsprovider.NewStore: os.LookupEnv(id), so a variable set to '' still wins."""
    bare = SecretSpec("TOKEN")
    assert with_source(bare, {"TOKEN": "v"}) == SecretSpec("TOKEN", env="TOKEN")
    assert with_source(bare, {"TOKEN": ""}) == SecretSpec("TOKEN", env="TOKEN")
    assert with_source(bare, {"OTHER": "v"}) == SecretSpec("TOKEN", src="TOKEN")
    given = SecretSpec("TOKEN", src="/f")
    assert with_source(given, {"TOKEN": "v"}) == given  # an explicit source is kept


def test_env_wins_over_src_and_unset_is_empty() -> None:
    """GetSecret reads the variable when env is given (os.Getenv: '' when unset)."""
    assert env_value(SecretSpec("a", src="/f", env="V"), {"V": "x"}) == "x"
    assert env_value(SecretSpec("a", env="V"), {}) == ""
    assert env_value(SecretSpec("a", src="/f"), {"V": "x"}) is None
