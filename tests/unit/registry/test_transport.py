from __future__ import annotations

from layerbuild.digest import sha256_bytes
from layerbuild.registry.answers import range_end
from layerbuild.registry.client import _with_digest, api_host
from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.transport import redact_url, uses_plain_http


def test_plain_http_only_for_loopback_and_insecure_hosts() -> None:
    opts = RegistryOptions(insecure=frozenset({"reg.lan", "other.lan:5000"}))
    assert uses_plain_http("localhost:5000", opts)
    assert uses_plain_http("127.0.0.1:39000", opts)
    assert uses_plain_http("[::1]:5000", opts)
    assert uses_plain_http("reg.lan:443", opts)
    assert uses_plain_http("other.lan:5000", opts)
    assert not uses_plain_http("other.lan:6000", opts)
    assert not uses_plain_http("registry-1.docker.io", opts)
    assert not uses_plain_http("localhost.evil.com", opts)


def test_redact_url_drops_the_query() -> None:
    url = "http://r:5000/v2/a/blobs/uploads/u?_state=SECRETSTATE&digest=sha256%3Aab"
    assert redact_url(url) == "http://r:5000/v2/a/blobs/uploads/u"


def test_upload_url_helpers() -> None:
    d = sha256_bytes(b"x")
    assert _with_digest("http://r/u?_state=s", d) == f"http://r/u?_state=s&digest=sha256%3A{d.hex}"
    assert _with_digest("http://r/u", d).endswith(f"/u?digest=sha256%3A{d.hex}")
    assert range_end("0-4194303", 0) == 4194304
    assert range_end(None, 7) == 7
    assert api_host("docker.io") == "registry-1.docker.io"
    assert api_host("127.0.0.1:5000") == "127.0.0.1:5000"
