from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from layerbuild.errors import RegistryError
from layerbuild.registry import credentials as cr
from layerbuild.registry.credentials import Credentials


def _env(tmp_path: Path) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(tmp_path / "dc"), "PATH": str(tmp_path / "bin")}


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_config_path(tmp_path: Path) -> None:
    assert cr.config_path({"DOCKER_CONFIG": "/x"}) == Path("/x/config.json")
    assert cr.config_path({"HOME": "/home/u"}) == Path("/home/u/.docker/config.json")


def test_lookup_from_auths_including_legacy_keys(tmp_path: Path) -> None:
    env = _env(tmp_path)
    path = cr.config_path(env)
    path.parent.mkdir()
    path.write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": _auth("hub", "p1")},
                    "https://reg.example:5000": {"auth": _auth("me", "p:2")},
                    "tok.example": {"auth": _auth("u", "x"), "identitytoken": "refresh"},
                }
            }
        )
    )
    assert cr.lookup("docker.io", env) == Credentials("hub", "p1")
    assert cr.lookup("reg.example:5000", env) == Credentials("me", "p:2")
    token = cr.lookup("tok.example", env)
    assert token is not None and token.identity_token and token.secret == "refresh"
    assert cr.lookup("other.example", env) is None


def test_store_and_erase_write_a_private_file(tmp_path: Path) -> None:
    env = _env(tmp_path)
    path = cr.store("reg.example", Credentials("me", "pw"), env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["auths"]["reg.example"]["auth"] == _auth("me", "pw")
    cr.store("docker.io", Credentials("hub", "x"), env)
    assert "https://index.docker.io/v1/" in json.loads(path.read_text())["auths"]
    assert cr.erase("reg.example", env) is True
    assert cr.erase("reg.example", env) is False
    assert cr.lookup("reg.example", env) is None
    assert cr.lookup("docker.io", env) == Credentials("hub", "x")


def test_bad_auth_entry_is_reported_without_its_content(tmp_path: Path) -> None:
    env = _env(tmp_path)
    path = cr.config_path(env)
    path.parent.mkdir()
    path.write_text(json.dumps({"auths": {"r.example": {"auth": "bm90LWEtcGFpcg=="}}}))
    with pytest.raises(RegistryError, match="not base64 of user:password") as e:
        cr.lookup("r.example", env)
    assert "bm90LWEtcGFpcg" not in str(e.value)


def _helper(tmp_path: Path, body: str) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    helper = bindir / "docker-credential-fake"
    helper.write_text("#!/bin/sh\n" + body)
    helper.chmod(0o755)


def test_cred_helper_get_store_erase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path)
    log = tmp_path / "calls"
    _helper(
        tmp_path,
        f'echo "$1 $(cat)" >> {log}\n'
        'if [ "$1" = get ]; then echo \'{"Username":"hu","Secret":"hs"}\'; fi\n',
    )
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + ":/usr/bin:/bin")
    path = cr.config_path(env)
    path.parent.mkdir()
    path.write_text(json.dumps({"credHelpers": {"reg.example": "fake"}}))
    assert cr.lookup("reg.example", env) == Credentials("hu", "hs")
    cr.store("reg.example", Credentials("hu", "new"), env)
    assert cr.erase("reg.example", env) is True
    calls = log.read_text().splitlines()
    assert calls[0] == "get reg.example"
    assert calls[1].startswith("store ") and '"Secret": "new"' in calls[1]
    assert calls[2] == "erase reg.example"
    assert "auths" not in json.loads(path.read_text())


def test_cred_helper_not_found_and_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _env(tmp_path)
    _helper(tmp_path, 'echo "credentials not found in native keychain"; exit 1\n')
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + ":/usr/bin:/bin")
    path = cr.config_path(env)
    path.parent.mkdir()
    path.write_text(json.dumps({"credsStore": "fake"}))
    assert cr.lookup("reg.example", env) is None
    _helper(tmp_path, 'echo "secret-echo"; exit 3\n')
    with pytest.raises(RegistryError, match="exit status 3") as e:
        cr.lookup("reg.example", env)
    assert "secret-echo" not in str(e.value)
    path.write_text(json.dumps({"credsStore": "absent"}))
    with pytest.raises(RegistryError, match="docker-credential-absent .* not installed"):
        cr.lookup("reg.example", env)
