"""A real Distribution registry (Debian's docker-registry) for tests, with auth variants.

Name: RegistryServer, TokenIssuer, DropOnceProxy, RegistryCLI; fixtures `registry`,
      `registry_basic`, `registry_token`, `registry_cli`, `fast` (quick CLI retries).
Scope: tests/integration/registry. Each fixture starts `/usr/bin/docker-registry serve CONFIG`
       on 127.0.0.1 with a free port and filesystem storage under tmp_path, waits until /v2/
       answers, and kills it afterwards. `registry_basic` adds htpasswd Basic auth (a file made by
       `htpasswd -Bbn`); `registry_token` adds the registry's token auth, backed by TokenIssuer:
       an http.server thread on 127.0.0.1 that checks Basic credentials and signs real RS256
       JWTs with a key and self-signed certificate generated for the test (cryptography).
Depends: docker-registry and apache2-utils (htpasswd) from Debian, the cryptography package;
       a missing tool fails the test. Only 127.0.0.1 traffic (pytest-socket allows no other).
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Layerbuild

REPO = Path(__file__).resolve().parents[2]
REGISTRY_BIN = "/usr/bin/docker-registry"
SERVICE = "layerbuild-test-registry"
ISSUER = "layerbuild-test-issuer"
USER, PASSWORD = "alice", "s3cret-Pa55word"
_START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed (apt-get install docker-registry apache2-utils)")
    return path


@dataclass
class RegistryServer:
    """One docker-registry process; `restart()` keeps its port and storage."""

    root: Path
    auth: dict[str, Any] | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    @property
    def log_path(self) -> Path:
        return self.root / "registry.log"

    def _config(self) -> Path:
        config: dict[str, Any] = {
            "version": "0.1",
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            # a fixed secret keeps upload URLs valid across a restart (resumed uploads)
            "http": {"addr": self.host, "secret": "layerbuild-test-secret"},
        }
        if self.auth is not None:
            config["auth"] = self.auth
        path = self.root / "config.yml"
        path.write_text(json.dumps(config, indent=2))  # YAML is a superset of JSON
        return path

    def start(self) -> RegistryServer:
        _require(REGISTRY_BIN)
        self.root.mkdir(parents=True, exist_ok=True)
        config = self._config()
        log = open(self.log_path, "ab")  # closed below: the child keeps its own copy
        try:
            self.proc = subprocess.Popen(
                [REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=log
            )
        finally:
            log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"docker-registry exited {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"GET /v2/ HTTP/1.0\r\nHost: x\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1."):
                        return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"docker-registry did not answer on {self.host}:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no graceful shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def access_lines(self) -> list[str]:
        """The access-log lines ("METHOD /path HTTP/1.1" STATUS ...) written so far."""
        return [line for line in self.log().splitlines() if '"' in line and "HTTP/1.1" in line]


def htpasswd_file(path: Path, user: str = USER, password: str = PASSWORD) -> Path:
    proc = subprocess.run(
        [_require("htpasswd"), "-Bbn", user, password], capture_output=True, text=True, check=True
    )
    path.write_text(proc.stdout)
    return path


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenIssuer:
    """A token server for the registry's `auth: token:` mode, signing RS256 JWTs.

    Grants every requested action to USER/PASSWORD, answers 401 to anyone else (including
    anonymous requests), and remembers the tokens it issued so tests can look for leaks.
    """

    def __init__(self, workdir: Path, *, lifetime: int = 300) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = workdir / "token-cert.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.lifetime = lifetime
        self.issued: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def registry_auth(self) -> dict[str, Any]:
        return {
            "token": {
                "realm": self.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(self.cert_path),
            }
        }

    def start(self) -> TokenIssuer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def sign(self, subject: str, access: list[dict[str, Any]]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + self.lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        token = signing_input + "." + _b64url(signature)
        self.issued.append(token)
        return token

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                user = _basic_user(self.headers.get("Authorization"))
                issuer.requests.append({"user": user, "scope": query.get("scope", [])})
                if user != USER:
                    self._answer(401, {"errors": [{"code": "UNAUTHORIZED"}]})
                    return
                access = [_scope_access(s) for s in query.get("scope", [])]
                token = issuer.sign(user, [a for a in access if a])
                self._answer(200, {"token": token, "expires_in": issuer.lifetime})

            def _answer(self, status: int, obj: Mapping[str, Any]) -> None:
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def _basic_user(header: str | None) -> str | None:
    """The user of a Basic header whose password is right; None otherwise."""
    if not header or not header.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user if (user, password) == (USER, PASSWORD) else None


def _scope_access(scope: str) -> dict[str, Any] | None:
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name:
        return None
    return {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}


class DropOnceProxy:
    """A TCP proxy on 127.0.0.1 that cuts one connection once `cut_after` response bytes passed.

    Also records the request heads it forwarded, so a test can see the Range request that
    resumed the download.
    """

    def __init__(self, upstream_port: int, cut_after: int) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.cut = threading.Event()
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._responses, args=(upstream, client), daemon=True).start()

    def _requests(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                self.requests.append(data)
                dst.sendall(data)
        except OSError:
            pass
        _close(src, dst)

    def _responses(self, src: socket.socket, dst: socket.socket) -> None:
        passed = 0
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
                passed += len(data)
                if passed > self.cut_after and not self.cut.is_set():
                    self.cut.set()
                    break
        except OSError:
            pass
        _close(src, dst)


def _close(*socks: socket.socket) -> None:
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


@dataclass(frozen=True)
class RegistryCLI(Layerbuild):
    """`layerbuild --root STORE ...` with a private DOCKER_CONFIG for credentials."""

    docker_config: Path = Path("/nonexistent")

    def __call__(  # type: ignore[override]
        self, *args: str | os.PathLike[str], input: str | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        env = {"DOCKER_CONFIG": str(self.docker_config)}
        return super().__call__(*args, input=input, env=env, timeout=timeout)

    def with_store(self, store: Path) -> RegistryCLI:
        return RegistryCLI(store, self.docker_config)


def _serve(server: RegistryServer) -> Iterator[RegistryServer]:
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """An anonymous registry on 127.0.0.1 (plain HTTP), storage under tmp_path."""
    yield from _serve(RegistryServer(tmp_path / "registry"))


@pytest.fixture
def registry_basic(tmp_path: Path) -> Iterator[RegistryServer]:
    """A registry with htpasswd Basic auth for USER / PASSWORD."""
    root = tmp_path / "registry-basic"
    root.mkdir()
    auth = {"htpasswd": {"realm": "layerbuild-test", "path": str(htpasswd_file(root / "htp"))}}
    yield from _serve(RegistryServer(root, auth=auth))


@pytest.fixture
def token_issuer(tmp_path: Path) -> Iterator[TokenIssuer]:
    issuer = TokenIssuer(tmp_path).start()
    try:
        yield issuer
    finally:
        issuer.stop()


@pytest.fixture
def registry_token(tmp_path: Path, token_issuer: TokenIssuer) -> Iterator[RegistryServer]:
    """A registry with token auth: TokenIssuer signs JWTs for USER / PASSWORD."""
    root = tmp_path / "registry-token"
    yield from _serve(RegistryServer(root, auth=token_issuer.registry_auth()))


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quick retries and a short timeout for the CLI (its environment is inherited)."""
    monkeypatch.setenv("LAYERBUILD_REGISTRY_RETRIES", "3")
    monkeypatch.setenv("LAYERBUILD_REGISTRY_BACKOFF", "0.05")
    monkeypatch.setenv("LAYERBUILD_REGISTRY_TIMEOUT", "2")


@pytest.fixture
def registry_cli(tmp_path: Path) -> RegistryCLI:
    """The CLI over a fresh store, with DOCKER_CONFIG in tmp_path (never ~/.docker)."""
    (tmp_path / "docker-config").mkdir()
    return RegistryCLI(tmp_path / "store", tmp_path / "docker-config")
