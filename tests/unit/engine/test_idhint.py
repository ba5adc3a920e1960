"""The hint for a rootless step that failed to switch ids in a namespace that maps one id."""

from __future__ import annotations

import pwd

from layerbuild.engine.idhint import single_id_hint

APT = [
    "E: setgroups 65534 failed - setgroups (1: Operation not permitted)",
    "E: seteuid 42 failed - seteuid (22: Invalid argument)",
    "E: Method http has died unexpectedly!",
]
ROOT = pwd.getpwuid(0).pw_name


def test_a_single_id_map_and_a_failed_switch_give_the_hint() -> None:
    hint = single_id_hint(APT, "         0          0          1\n")
    assert hint is not None
    assert f"no range for {ROOT} in /etc/subuid and /etc/subgid" in hint
    assert f"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {ROOT}" in hint


def test_an_unknown_caller_is_named_by_its_uid() -> None:
    hint = single_id_hint(["chown: changing ownership of 'x': Invalid argument"], "0 4000123 1")
    assert hint is not None and "no range for 4000123 in" in hint


def test_no_hint_with_subordinate_ids_as_root_or_for_other_failures() -> None:
    full = "0 1000 1\n1 100000 65535\n"
    assert single_id_hint(APT, full) is None
    assert single_id_hint(APT, "0 0 4294967295\n") is None  # real root
    assert single_id_hint(APT, "") is None  # no user namespaces
    assert single_id_hint(["E: Unable to locate package nope"], "0 1000 1\n") is None
