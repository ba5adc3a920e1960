"""What RUN --mount=type=secret,env= hands the step: the variable's value, read when the step
runs, and only for the step's process."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerbuild.engine.runmounts import SecretMount
from layerbuild.engine.runmounts_prepare import secret_env
from layerbuild.engine.runstep import with_secrets
from layerbuild.errors import BuildError


def test_secret_env_reads_the_secret_bytes(tmp_path: Path) -> None:
    src = tmp_path / "tok"
    src.write_bytes(b"s3cr3t\n\xff")
    mounts = [SecretMount("tok", None, env="TOKEN"), SecretMount("file", "/run/secrets/file")]
    env = secret_env(mounts, {"tok": src, "file": src})
    assert list(env) == ["TOKEN"]  # a file secret adds no variable
    assert env["TOKEN"].encode("utf-8", "surrogateescape") == b"s3cr3t\n\xff"  # as given


def test_missing_optional_secret_is_empty_and_required_fails(tmp_path: Path) -> None:
    """BuildKit's ExecOp.loadSecretEnv sets an optional secret that was not given to ""."""
    assert secret_env([SecretMount("gone", None, env="X")], {}) == {"X": ""}
    with pytest.raises(BuildError, match="secret 'gone' is required"):
        secret_env([SecretMount("gone", None, required=True, env="X")], {})
    with pytest.raises(BuildError, match=r"cannot read secret 'tok' from .*nope"):
        secret_env([SecretMount("tok", None, env="X")], {"tok": tmp_path / "nope"})


def test_a_nul_byte_cannot_be_a_variable(tmp_path: Path) -> None:
    src = tmp_path / "bin"
    src.write_bytes(b"a\0b")
    with pytest.raises(BuildError, match="NUL byte") as err:
        secret_env([SecretMount("bin", None, env="B")], {"bin": src})
    assert "a\0b" not in str(err.value)


def test_secret_variables_win_over_env() -> None:
    env = ("PATH=/bin", "TOKEN=from-env", "HOME=/root")
    assert with_secrets(env, {"TOKEN": "s"}) == ("PATH=/bin", "HOME=/root", "TOKEN=s")
