"""What a step's /etc/hosts and /etc/resolv.conf say in each network mode (pure)."""

from __future__ import annotations

import pytest

from layerbuild.errors import LayerbuildError
from layerbuild.sandbox.netfiles import (
    HostEntry,
    hosts_file,
    parse_add_host,
    resolv_conf,
    wants_host_loopback,
)

HOST = "search example.org\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions edns0\n"


def test_none_drops_loopback_resolvers_and_falls_back_to_public_ones() -> None:
    assert resolv_conf(HOST, "none") == "search example.org\nnameserver 10.0.0.2\noptions edns0\n"
    assert resolv_conf("nameserver ::1\n", "none") == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_host_keeps_the_hosts_file_as_it_is() -> None:
    assert resolv_conf(HOST, "host") == HOST


def test_default_asks_the_user_mode_stacks_forwarder_and_keeps_search_and_options() -> None:
    """The forwarder reaches the host's resolvers, loopback ones included, so they all go."""
    assert resolv_conf(HOST, "default") == (
        "nameserver 10.0.2.3\nsearch example.org\noptions edns0\n"
    )
    assert resolv_conf("", "default") == "nameserver 10.0.2.3\n"


def test_hosts_file_lists_localhost_the_hostname_and_added_hosts() -> None:
    extra = (HostEntry("db.local", "10.1.2.3"), HostEntry("h", "host-gateway"))
    text = hosts_file("sandbox", "default", extra)
    assert text.splitlines() == [
        "127.0.0.1\tlocalhost sandbox",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "10.1.2.3\tdb.local",
        "10.0.2.2\th",
    ]
    assert hosts_file("sandbox", "host", extra).splitlines()[-1] == "127.0.0.1\th"


def test_host_gateway_without_a_network_is_refused_with_what_to_do() -> None:
    with pytest.raises(LayerbuildError, match="needs a network") as e:
        hosts_file("x", "none", (HostEntry("h", "host-gateway"),))
    assert "--network=none" in str(e.value.hint)


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("db:10.0.0.5", HostEntry("db", "10.0.0.5")),
        ("db=10.0.0.5", HostEntry("db", "10.0.0.5")),
        ("v6:fd00::1", HostEntry("v6", "fd00::1")),
        ("v6=[fd00::1]", HostEntry("v6", "fd00::1")),
        ("host.docker.internal:host-gateway", HostEntry("host.docker.internal", "host-gateway")),
    ],
)
def test_add_host_forms(text: str, entry: HostEntry) -> None:
    assert parse_add_host(text) == entry


@pytest.mark.parametrize("text", ["db", "db:", ":10.0.0.1", "db:not-an-ip", "a b:10.0.0.1"])
def test_bad_add_host_is_refused(text: str) -> None:
    with pytest.raises(LayerbuildError, match="--add-host"):
        parse_add_host(text)


def test_only_host_gateway_opens_the_hosts_loopback() -> None:
    assert not wants_host_loopback([HostEntry("db", "10.0.0.5")])
    assert wants_host_loopback([HostEntry("db", "10.0.0.5"), HostEntry("h", "host-gateway")])
