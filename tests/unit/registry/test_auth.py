from __future__ import annotations

from layerbuild.registry.auth import Authenticator, parse_challenges, repository_scope
from layerbuild.registry.credentials import Credentials
from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.transport import Transport


def test_parse_bearer_challenge() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull"'
    )
    [c] = parse_challenges(header)
    assert c.scheme == "bearer"
    assert c.get("realm") == "https://auth.docker.io/token"
    assert c.get("service") == "registry.docker.io"
    assert c.get("scope") == "repository:library/busybox:pull"


def test_parse_several_challenges_and_escapes() -> None:
    header = 'Basic realm="a \\"quoted\\" realm", Bearer realm=https://x/t, error=invalid_token'
    basic, bearer = parse_challenges(header)
    assert basic.scheme == "basic" and basic.get("realm") == 'a "quoted" realm'
    assert bearer.get("realm") == "https://x/t" and bearer.get("error") == "invalid_token"


def test_parse_garbage_gives_nothing_usable() -> None:
    assert parse_challenges("") == []
    assert all(c.get("realm") is None for c in parse_challenges("Negotiate"))


def test_scope_format() -> None:
    assert repository_scope("team/app", "pull,push") == "repository:team/app:pull,push"


def test_basic_challenge_without_credentials_does_not_retry() -> None:
    auth = Authenticator("r.example", Transport(RegistryOptions()), None)
    assert auth.unauthorized('Basic realm="r"', ()) is False
    assert auth.header(()) is None


def test_basic_challenge_with_credentials_sends_them_and_hides_them() -> None:
    creds = Credentials("bob", "hunter2")
    auth = Authenticator("r.example", Transport(RegistryOptions()), creds)
    assert auth.unauthorized('Basic realm="r"', ("repository:a:pull",)) is True
    assert auth.header(("repository:a:pull",)) == creds.basic()
    assert "hunter2" not in repr(auth) and "hunter2" not in repr(creds)
    assert "bob" in repr(creds)
