"""Why a RUN could not fetch over TLS: the hint for a step that failed on a certificate check.

On a network whose HTTPS goes through a TLS-intercepting proxy, pip, npm, curl and apt over
https reject the proxy's certificate with messages that name the symptom, not the fix. The
fix a user behind such a proxy needs is to hand the proxy's CA bundle to the step as a
secret, which never enters a layer; turning verification off is not one.
"""

from __future__ import annotations

import re

# pip/requests/urllib3, curl, npm/node, Go, openssl, GnuTLS (apt over https), Java
_TLS_FAILURE = re.compile(
    r"CERTIFICATE_VERIFY_FAILED|certificate verify failed|SSL certificate problem"
    r"|self[- ]signed certificate in certificate chain|SELF_SIGNED_CERT_IN_CHAIN"
    r"|unable to get local issuer certificate|UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
    r"|x509: certificate signed by unknown authority|certificate verification failed"
    r"|The certificate is NOT trusted|PKIX path building failed",
    re.IGNORECASE,
)


def tls_hint(tail: list[str]) -> str | None:
    """The hint for a step whose output `tail` shows a failed certificate check, else None."""
    if not any(_TLS_FAILURE.search(line) for line in tail):
        return None
    return (
        "the step's output shows a TLS certificate the command does not trust. If this "
        "machine reaches the internet through a TLS-intercepting proxy, hand its CA bundle "
        "to the step as a secret (it never enters a layer): build with "
        "--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt and mount it in the RUN, e.g. "
        "RUN --mount=type=secret,id=ca pip install --cert /run/secrets/ca ... (npm: --cafile, "
        "apt: Acquire::https::CAInfo; see docs/run.md, Network); do not turn certificate "
        "checks off"
    )
