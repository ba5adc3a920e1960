"""The rule the golden cache-key files (tests/golden/keys/, tests/support/keygolden.py) hold
keys to: a changed key under an unchanged KEY_FORMAT asks for a bump; a bumped KEY_FORMAT
still fails until the files are regenerated; the files agree with plan/keys.py."""

from __future__ import annotations

import copy

from layerbuild.plan.keys import KEY_FORMAT, CacheKey
from tests.support.keygolden import GOLDEN, KeyGolden, compare, input_digest, key_format

GOLDEN_FILE = GOLDEN / "files" / "keys.json"


def test_key_format_is_read_as_keys_py_sets_it() -> None:
    assert key_format() == KEY_FORMAT


def test_the_golden_digest_rule_is_the_key_function() -> None:
    inputs = [["parent", "sha256:" + "0" * 64], ["format", KEY_FORMAT], ["instruction", "ENV É=1"]]
    assert input_digest(inputs) == str(CacheKey.of((k, v) for k, v in inputs).digest)


def test_an_unchanged_build_compares_equal() -> None:
    golden = KeyGolden.read(GOLDEN_FILE)
    assert compare(golden, copy.deepcopy(golden), "files") is None


def test_a_changed_input_under_the_same_format_asks_for_a_bump() -> None:
    golden = KeyGolden.read(GOLDEN_FILE)
    steps = copy.deepcopy(golden.steps)
    copied = next(s for s in steps if s["instruction"].startswith("COPY --chown=app:app"))
    copied["inputs"] = [
        [k, "sha256:" + "9" * 64 if k == "sources" else v] for k, v in copied["inputs"]
    ]
    copied["key"] = input_digest(copied["inputs"])
    problem = compare(golden, KeyGolden(golden.key_format, steps), "files")
    assert problem is not None
    head, diff = problem.split("\n", 1)
    assert head.startswith("cache keys changed: bump KEY_FORMAT in layerbuild/plan/keys.py")
    assert "(old records must not be reused) and regenerate with UPDATE_GOLDEN=1" in head
    assert f'+        ["sources", "sha256:{"9" * 64}"]' in diff.splitlines()
    assert sum(line.startswith("+ ") for line in diff.splitlines()) == 2  # input and key


def test_a_bumped_format_fails_until_regenerated() -> None:
    golden = KeyGolden.read(GOLDEN_FILE)
    bumped = KeyGolden(str(int(golden.key_format) + 1), golden.steps)
    problem = compare(golden, bumped, "files")
    assert problem is not None
    assert problem.startswith(f"KEY_FORMAT is {bumped.key_format} but tests/golden/keys/files/")
    assert "regenerate with UPDATE_GOLDEN=1" in problem
