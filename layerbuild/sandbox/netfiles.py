"""What a RUN step's /etc/hosts and /etc/resolv.conf say, by network mode (pure).

The files are written by runner.py into the run directory and bind-mounted over the image's,
so they never reach the layer. Modes (docs/run.md, "Network"):

- ``default``: a network namespace of its own behind the user-mode stack of usernet.py.
  Its DNS forwarder (10.0.2.3) answers for the host's resolvers, so it works even when the
  host only has loopback resolvers (systemd-resolved, dnsmasq on 127.0.0.1).
- ``none``: loopback only; the host's non-loopback resolvers are kept (a step may still read
  the file) and public ones stand in when none is left, as Docker does.
- ``host``: the host's network, and so its resolv.conf as it is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from layerbuild.errors import LayerbuildError

# libslirp's fixed addresses for its default 10.0.2.0/24 network (slirp4netns(1))
USERNET_GATEWAY = "10.0.2.2"  # the host, when host loopback is allowed
USERNET_DNS = "10.0.2.3"
# docker's keyword for "the host, as the step can reach it" (--add-host NAME:host-gateway)
HOST_GATEWAY = "host-gateway"
# Docker's fallback when the host only has loopback resolvers (unreachable from the step)
_DEFAULT_DNS = ("8.8.8.8", "8.8.4.4")


@dataclass(frozen=True, slots=True)
class HostEntry:
    """One `--add-host NAME:IP` line; `ip` may be HOST_GATEWAY until the mode resolves it."""

    name: str
    ip: str


def parse_add_host(text: str) -> HostEntry:
    """`NAME:IP` or `NAME=IP` (buildx accepts both; IPv6 addresses contain colons, so the
    name ends at the first separator)."""
    for sep in ("=", ":"):
        name, found, ip = text.partition(sep)
        if found:
            break
    name, ip = name.strip(), ip.strip().strip("[]")
    if not name or not ip or any(c.isspace() for c in name):
        raise LayerbuildError(
            f"invalid --add-host {text!r}",
            hint="give NAME:IP, e.g. --add-host db.local:10.1.2.3 or "
            "--add-host host.docker.internal:host-gateway",
        )
    if ip != HOST_GATEWAY:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise LayerbuildError(
                f"invalid IP address {ip!r} in --add-host {text!r}",
                hint=f"give an IPv4 or IPv6 address, or {HOST_GATEWAY} for the host",
            ) from None
    return HostEntry(name, ip)


def wants_host_loopback(hosts: Sequence[HostEntry]) -> bool:
    """Whether a step asked to reach the host (only ever by naming host-gateway)."""
    return any(h.ip == HOST_GATEWAY for h in hosts)


def hosts_file(hostname: str, network: str, extra: Sequence[HostEntry] = ()) -> str:
    """The step's /etc/hosts: localhost, its own name, then the --add-host entries."""
    lines = [
        f"127.0.0.1\tlocalhost {hostname}",
        "::1\tlocalhost ip6-localhost ip6-loopback",
    ]
    for entry in extra:
        lines.append(f"{_resolve_gateway(entry.ip, network)}\t{entry.name}")
    return "\n".join(lines) + "\n"


def _resolve_gateway(ip: str, network: str) -> str:
    if ip != HOST_GATEWAY:
        return ip
    if network == "default":
        return USERNET_GATEWAY
    if network == "host":
        return "127.0.0.1"
    raise LayerbuildError(
        f"--add-host ...:{HOST_GATEWAY} needs a network: this step's network is {network!r}",
        hint="use the default network (drop --network=none) or --network=host",
    )


def resolv_conf(host: str, network: str) -> str:
    """The step's resolv.conf, from the host's text and the step's network mode."""
    lines = host.splitlines()
    if network == "default":
        rest = [line for line in lines if not _is_nameserver(line)]
        return "\n".join([f"nameserver {USERNET_DNS}", *rest]) + "\n"
    kept = [
        line
        for line in lines
        if network == "host" or not (_is_nameserver(line) and _loopback(line))
    ]
    if not any(_is_nameserver(line) for line in kept):
        kept += [f"nameserver {ns}" for ns in _DEFAULT_DNS]
    return "\n".join(kept) + "\n"


def _is_nameserver(line: str) -> bool:
    fields = line.split()
    return fields[:1] == ["nameserver"] and len(fields) > 1


def _loopback(line: str) -> bool:
    address = line.split()[1]
    return address.startswith("127.") or address == "::1"
