"""Basic (htpasswd) and token (real JWTs) auth, login/logout, and no credential ever printed."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from tests.support.registry import PASSWORD, USER, RegistryCLI, RegistryServer, TokenIssuer

pytestmark = [pytest.mark.registry]


def _no_secrets(*texts: str, secrets: list[str]) -> None:
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for text in texts:
        for secret in [PASSWORD, basic, *secrets]:
            assert secret not in text, "a credential was printed"


def _login(lb: RegistryCLI, host: str, password: str) -> tuple[int, str, str]:
    proc = lb("login", "-u", USER, "--password-stdin", host, input=password + "\n")
    return proc.returncode, proc.stdout, proc.stderr


def _push_and_pull(lb: RegistryCLI, busybox_layout: Path, tmp_path: Path, ref: str) -> list[str]:
    outputs = []
    outputs += [lb.ok("load", busybox_layout, "-t", "busybox:latest").stdout]
    proc = lb.ok("push", "busybox:latest", ref)
    outputs += [proc.stdout, proc.stderr]
    proc = lb.with_store(tmp_path / "puller").ok("pull", ref)
    outputs += [proc.stdout, proc.stderr]
    return outputs


def test_basic_auth_good_and_bad_credentials(
    registry_basic: RegistryServer,
    registry_cli: RegistryCLI,
    busybox_layout: Path,
    tmp_path: Path,
) -> None:
    lb = registry_cli
    host = registry_basic.host
    ref = f"{host}/private/busybox:1"
    lb.ok("load", busybox_layout, "-t", "busybox:latest")

    anonymous = lb("push", "busybox:latest", ref)
    assert anonymous.returncode == 8
    assert "authentication" in anonymous.stderr and f"layerbuild login {host}" in anonymous.stderr

    code, out, err = _login(lb, host, "wrong-password")
    assert code == 8 and "Login Succeeded" not in out
    _no_secrets(out, err, secrets=["wrong-password"])
    assert not (lb.docker_config / "config.json").exists()

    code, out, err = _login(lb, host, PASSWORD)
    assert code == 0 and "Login Succeeded" in out
    config_file = lb.docker_config / "config.json"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    auth = json.loads(config_file.read_text())["auths"][host]["auth"]
    assert base64.b64decode(auth).decode() == f"{USER}:{PASSWORD}"

    outputs = _push_and_pull(lb, busybox_layout, tmp_path, ref)
    _no_secrets(out, err, *outputs, secrets=[])

    assert "Removing login credentials" in lb.ok("logout", host).stdout
    assert host not in json.loads(config_file.read_text()).get("auths", {})
    denied = lb.with_store(tmp_path / "after-logout")("pull", ref)
    assert denied.returncode == 8 and "authentication" in denied.stderr


def test_token_auth_with_real_jwts(
    registry_token: RegistryServer,
    token_issuer: TokenIssuer,
    registry_cli: RegistryCLI,
    busybox_layout: Path,
    tmp_path: Path,
) -> None:
    lb = registry_cli
    host = registry_token.host
    ref = f"{host}/secure/busybox:1"

    anonymous = lb("pull", ref)
    assert anonymous.returncode == 8 and "needs credentials" in anonymous.stderr

    code, out, err = _login(lb, host, "not-it")
    assert code == 8 and "rejected the credentials" in err and repr(USER) in err
    _no_secrets(out, err, secrets=["not-it"])

    code, out, err = _login(lb, host, PASSWORD)
    assert code == 0, err
    outputs = _push_and_pull(lb, busybox_layout, tmp_path, ref)

    # the registry accepted our bearer tokens: scoped per repository, with push for the push
    scopes = {s for r in token_issuer.requests if r["user"] == USER for s in r["scope"]}
    assert "repository:secure/busybox:pull,push" in scopes
    assert "repository:secure/busybox:pull" in scopes
    assert token_issuer.issued
    _no_secrets(out, err, *outputs, secrets=token_issuer.issued)


def test_credentials_from_a_credential_helper(
    registry_basic: RegistryServer,
    registry_cli: RegistryCLI,
    tmp_path: Path,
    busybox_layout: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """credsStore: docker-credential-<name> get answers the secret; nothing is in auths."""
    helper_dir = tmp_path / "bin"
    helper_dir.mkdir()
    helper = helper_dir / "docker-credential-testhelper"
    helper.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || exit 1\n'
        "read server\n"
        f'printf \'{{"ServerURL":"%s","Username":"{USER}","Secret":"{PASSWORD}"}}\' "$server"\n'
    )
    helper.chmod(0o755)
    (registry_cli.docker_config / "config.json").write_text(
        json.dumps({"credsStore": "testhelper"})
    )
    monkeypatch.setenv("PATH", f"{helper_dir}:{os.environ['PATH']}")  # seen by the CLI child
    registry_cli.ok("load", busybox_layout, "-t", "busybox:latest")
    proc = registry_cli.ok("push", "busybox:latest", f"{registry_basic.host}/helper/busybox:1")
    assert "Pushed" in proc.stderr
    _no_secrets(proc.stdout, proc.stderr, secrets=[])
