"""Registry authentication: anonymous, Basic, and the Bearer token flow of the distribution spec.

The flow (distribution's docs/spec/auth/token.md): a request without (or with an expired)
token gets ``401`` and ``WWW-Authenticate: Bearer realm="...",service="...",scope="..."``. The
client asks the realm for a token for that service and those scopes, with Basic credentials when
it has some and anonymously otherwise, and repeats the request with
``Authorization: Bearer <token>``.

Tokens are cached per set of scopes (``repository:app:pull`` and ``repository:app:pull,push``
are different tokens) until they expire; once the realm is known, a token for a new set of
scopes is fetched before the request instead of after a 401. A 401 with a token in hand drops
that token and fetches a fresh one once; a second 401 is the registry's final answer.

A registry that answers ``WWW-Authenticate: Basic`` gets the stored user and password on every
request from then on.

Nothing here logs or formats a secret: errors name the registry and the user only.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from layerbuild.errors import RegistryError, RegistryUnavailable
from layerbuild.registry.credentials import Credentials
from layerbuild.registry.transport import (
    RETRY_STATUSES,
    Transport,
    redact_url,
)

# tokens without expires_in live 60 s (the spec's default); refresh a little early
_DEFAULT_TOKEN_LIFETIME = 60.0
_EXPIRY_MARGIN = 10.0
_PARAM = re.compile(r'\s*([a-zA-Z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge of a WWW-Authenticate header: a scheme and its parameters."""

    scheme: str
    params: tuple[tuple[str, str], ...]

    def get(self, key: str) -> str | None:
        return dict(self.params).get(key)


def parse_challenges(header: str) -> list[Challenge]:
    """Parse ``Bearer realm="x",service="y", Basic realm="z"`` into challenges (RFC 7235)."""
    out: list[Challenge] = []
    rest = header.strip()
    while rest:
        m = re.match(r"([A-Za-z][\w-]*)\s*", rest)
        if not m:
            break
        scheme, rest = m.group(1), rest[m.end() :]
        params: list[tuple[str, str]] = []
        while True:
            p = _PARAM.match(rest)
            if not p:
                break
            value = p.group(2) if p.group(2) is not None else p.group(3)
            params.append((p.group(1).lower(), re.sub(r"\\(.)", r"\1", value)))
            rest = rest[p.end() :]
        out.append(Challenge(scheme.lower(), tuple(params)))
        rest = rest.lstrip(", ")
    return out


def repository_scope(repository: str, actions: str) -> str:
    """``repository:<name>:<actions>``, e.g. actions 'pull' or 'pull,push'."""
    return f"repository:{repository}:{actions}"


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires: float

    def __repr__(self) -> str:
        return f"_Token(<redacted>, expires={self.expires})"


class Authenticator:
    """The Authorization header for one registry's requests; thread-safe."""

    def __init__(self, registry: str, transport: Transport, creds: Credentials | None) -> None:
        self.registry = registry
        self._transport = transport
        self._creds = creds
        self._lock = threading.Lock()
        self._scheme: str | None = None  # "basic" or "bearer", once the registry has said
        self._bearer: Challenge | None = None
        self._tokens: dict[frozenset[str], _Token] = {}

    def __repr__(self) -> str:
        return f"Authenticator({self.registry!r}, user={self.user!r}, scheme={self._scheme})"

    @property
    def user(self) -> str | None:
        return self._creds.username if self._creds else None

    def header(self, scopes: tuple[str, ...]) -> str | None:
        """The Authorization value to send with a request needing `scopes`, if any."""
        with self._lock:
            if self._scheme == "basic" and self._creds is not None:
                return self._creds.basic()
            if self._scheme != "bearer" or self._bearer is None:
                return None
            token = self._tokens.get(frozenset(scopes))
            if token is None or token.expires <= time.monotonic():
                token = self._fetch_token(self._bearer, scopes)
            return f"Bearer {token.value}"

    def unauthorized(self, www_authenticate: str | None, scopes: tuple[str, ...]) -> bool:
        """Learn from a 401; True when repeating the request with new credentials may help."""
        challenges = parse_challenges(www_authenticate or "")
        with self._lock:
            for c in challenges:
                if c.scheme == "bearer" and c.get("realm"):
                    # a fresh token, also when one was just rejected (expired or revoked)
                    self._scheme, self._bearer = "bearer", c
                    extra = tuple(s for s in (c.get("scope") or "").split(" ") if s)
                    self._tokens[frozenset(scopes)] = self._fetch_token(c, scopes + extra)
                    return True
            for c in challenges:
                if c.scheme == "basic" and self._creds is not None:
                    self._scheme = "basic"
                    return True
        return False

    def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...]) -> _Token:
        realm = challenge.get("realm") or ""
        query: list[tuple[str, str]] = []
        if challenge.get("service"):
            query.append(("service", challenge.get("service") or ""))
        query.extend(("scope", s) for s in dict.fromkeys(scopes))
        creds = self._creds
        if creds is not None and creds.identity_token:
            form = [("grant_type", "refresh_token"), ("refresh_token", creds.secret)]
            form.append(("client_id", "layerbuild"))
            body = urllib.parse.urlencode(form + query).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            resp = self._transport.request("POST", realm, headers=headers, body=body, read=True)
        else:
            sep = "&" if "?" in realm else "?"
            url = realm + (sep + urllib.parse.urlencode(query) if query else "")
            headers = {"Authorization": creds.basic()} if creds is not None else {}
            resp = self._transport.request("GET", url, headers=headers, read=True)
        data = resp.read()  # read inside the retry policy: a cut token answer was retried
        if resp.status != 200:
            raise self._token_error(resp.status, realm)
        return _parse_token(data, realm)

    def _token_error(self, status: int, realm: str) -> RegistryError:
        if status in (401, 403) and self._creds is not None:
            return RegistryError(
                f"registry {self.registry} rejected the credentials of user "
                f"{self._creds.username!r} (token server {redact_url(realm)} answered {status})",
                status=401,
                hint=f"run `layerbuild login {self.registry}` with the right user and password",
            )
        if status in (401, 403):
            return RegistryError(
                f"registry {self.registry} needs credentials: its token server "
                f"{redact_url(realm)} refused an anonymous token ({status})",
                status=401,
                hint=f"run `layerbuild login {self.registry}` first",
            )
        error = RegistryUnavailable if status in RETRY_STATUSES else RegistryError
        return error(
            f"the token server {redact_url(realm)} of registry {self.registry} answered {status}",
            status=status,
            hint="retry later; if it persists the registry's auth service is broken",
        )


def _parse_token(data: bytes, realm: str) -> _Token:
    try:
        obj: Any = json.loads(data)
        value = obj.get("token") or obj.get("access_token")
        lifetime = float(obj.get("expires_in") or _DEFAULT_TOKEN_LIFETIME)
    except (ValueError, AttributeError, TypeError):
        value, lifetime = None, 0.0
    if not isinstance(value, str) or not value:
        raise RegistryError(
            f"the token server {redact_url(realm)} answered without a token",
            hint="check the registry's auth configuration",
        )
    expires = time.monotonic() + max(lifetime - _EXPIRY_MARGIN, 1.0)
    return _Token(value, expires)
