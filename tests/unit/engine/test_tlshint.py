"""The hint for a step that failed on a TLS certificate it does not trust."""

from __future__ import annotations

import pytest

from layerbuild.engine.tlshint import tls_hint

PIP = [
    "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) "
    "after connection broken by 'SSLError(SSLCertVerificationError(1, '[SSL: "
    "CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in "
    "certificate chain (_ssl.c:1006)'))': /simple/six/",
    "ERROR: No matching distribution found for six==1.16.0",
]


@pytest.mark.parametrize(
    "line",
    [
        PIP[0],
        "npm ERR! code SELF_SIGNED_CERT_IN_CHAIN",
        "curl: (60) SSL certificate problem: unable to get local issuer certificate",
        'Get "https://proxy.golang.org/": x509: certificate signed by unknown authority',
        "Certificate verification failed: The certificate is NOT trusted.",
    ],
)
def test_certificate_failures_of_common_tools_give_the_hint(line: str) -> None:
    hint = tls_hint(["some output", line])
    assert hint is not None
    assert "--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt" in hint
    assert "RUN --mount=type=secret,id=ca" in hint


def test_other_failures_give_none() -> None:
    assert tls_hint(PIP[1:]) is None
    assert tls_hint(["E: Unable to locate package nosuch", "ssl library loaded"]) is None
    assert tls_hint([]) is None
