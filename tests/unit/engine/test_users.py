from __future__ import annotations

import pytest

from layerbuild.engine.users import (
    parse_group,
    parse_passwd,
    resolve_chown,
    resolve_user,
    resolve_workdir_owner,
)
from layerbuild.errors import BuildError

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1001:App user:/home/app:/bin/sh
broken line without fields
bad:x:notanumber:1::/:/bin/sh
"""

GROUP = """\
root:x:0:
staff:x:50:app
appgrp:x:1001:
"""


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("1000", (1000, 1000)),  # a number alone is uid and gid
        ("1000:50", (1000, 50)),
        ("app", (1000, 1001)),  # a name takes its primary group
        ("app:staff", (1000, 50)),
        ("app:7", (1000, 7)),
        ("5:staff", (5, 50)),
        ("root", (0, 0)),
        ("4242", (4242, 4242)),  # numbers need no passwd entry
    ],
)
def test_resolve_chown(spec: str, expected: tuple[int, int]) -> None:
    assert resolve_chown(spec, PASSWD, GROUP) == expected


def test_chown_numbers_need_no_files() -> None:
    assert resolve_chown("10:20", None, None) == (10, 20)
    assert resolve_chown("10", None, None) == (10, 10)


def test_unknown_user_names_the_file() -> None:
    with pytest.raises(BuildError, match=r"user 'nobody' in /etc/passwd \(no such entry\)"):
        resolve_chown("nobody", PASSWD, GROUP)
    with pytest.raises(BuildError, match="the image has no /etc/passwd"):
        resolve_chown("app", None, GROUP)


def test_unknown_group_names_the_file() -> None:
    with pytest.raises(BuildError, match=r"group 'wheel' in /etc/group"):
        resolve_chown("app:wheel", PASSWD, GROUP)
    with pytest.raises(BuildError, match="the image has no /etc/group"):
        resolve_chown("1:staff", PASSWD, None)


@pytest.mark.parametrize("bad", ["", ":", "app:", ":staff"])
def test_malformed_spec(bad: str) -> None:
    with pytest.raises(BuildError, match="invalid --chown value"):
        resolve_chown(bad, PASSWD, GROUP)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("app", (1000, 1001)),
        ("1000", (1000, 1001)),  # a known uid keeps its passwd group
        ("4242", (4242, 0)),  # an unknown uid runs with gid 0
        ("app:staff", (1000, 50)),
        ("4242:4243", (4242, 4243)),
    ],
)
def test_resolve_user(spec: str, expected: tuple[int, int]) -> None:
    assert resolve_user(spec, PASSWD, GROUP) == expected


def test_resolve_user_errors() -> None:
    with pytest.raises(BuildError, match="USER=ghost"):
        resolve_user("ghost", PASSWD, GROUP)
    assert resolve_user("7", None, None) == (7, 0)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("1000", (1000, 1000)),  # a number alone is uid and gid (BuildKit's file op), not 1001
        ("4242", (4242, 4242)),
        ("app", (1000, 1001)),
        ("1000:staff", (1000, 50)),
    ],
)
def test_resolve_workdir_owner(spec: str, expected: tuple[int, int]) -> None:
    assert resolve_workdir_owner(spec, PASSWD, GROUP) == expected


def test_parsers_skip_malformed_lines() -> None:
    assert [e.name for e in parse_passwd(PASSWD)] == ["root", "daemon", "app"]
    assert [(e.name, e.gid) for e in parse_group(GROUP)] == [
        ("root", 0),
        ("staff", 50),
        ("appgrp", 1001),
    ]
