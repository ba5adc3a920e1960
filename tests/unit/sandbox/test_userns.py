"""Id maps for rootless runs, and how a process tells which namespace it is in."""

from __future__ import annotations

from layerbuild.privilege import is_identity_map, mapped_count
from layerbuild.sandbox.userns import IdRange, id_map, parse_subid

SUBUID = "# comment\nalice:100000:65536\nbob:200000:1000\n1001:300000:65536\n"


def test_parse_subid_finds_a_range_big_enough_by_name_or_uid() -> None:
    assert parse_subid(SUBUID, "alice", 1000) == (100000, 65536)
    assert parse_subid(SUBUID, "bob", 1002) is None  # too small for 0..65535
    assert parse_subid(SUBUID, "carol", 1001) == (300000, 65536)
    assert parse_subid("", "alice", 1000) is None


def test_id_map_maps_root_to_the_caller_and_the_rest_to_the_range() -> None:
    ids = id_map(1000, 1000, (100000, 65536), (100000, 65536))
    assert ids.uids == (IdRange(0, 1000, 1), IdRange(1, 100000, 65535))
    assert not ids.single


def test_without_subordinate_ids_only_root_is_mapped() -> None:
    ids = id_map(1000, 1001, None, (1, 2))
    assert ids.single
    assert ids.gids == (IdRange(0, 1001, 1),)


def test_only_the_identity_map_is_the_initial_namespace() -> None:
    assert is_identity_map("         0          0 4294967295\n")
    assert not is_identity_map("0 1000 1\n1 100000 65535\n")
    assert not is_identity_map("0 0 1\n")  # root mapped alone: a namespace, not the host's
    assert mapped_count("0 1000 1\n1 100000 65535\n") == 65536
    assert mapped_count("0 1000 1\n") == 1
