"""Which sources are git URLs (BuildKit's gitutil rules) and what their fragments select."""

from __future__ import annotations

import pytest

from layerbuild.context.gitref import GitRef, is_git_url, parse_git_url
from layerbuild.errors import ContextError


@pytest.mark.parametrize(
    "text",
    [
        "https://example.com/org/repo.git",
        "https://example.com/org/repo.git#main:sub/dir",
        "HTTP://example.com/repo.git",
        "git://127.0.0.1:9418/repo",
        "ssh://git@example.com/org/repo",
        "git@example.com:org/repo.git",
        "user@host.example:repo#v1",
    ],
)
def test_git_urls(text: str) -> None:
    assert is_git_url(text)


@pytest.mark.parametrize(
    "text",
    [
        "https://example.com/file.tar.gz",
        "https://example.com/repo.git/file",  # a path below .git: a download
        "ftp://example.com/repo.git",
        "repo.git",  # a local file or directory named so
        "dir/x.git",
        "host:path",  # no user@: a local name, as BuildKit's implicit-ssh rule has it
        "./a@b:c",
    ],
)
def test_not_git_urls(text: str) -> None:
    assert not is_git_url(text)


def test_fragment_ref_and_subdir() -> None:
    assert parse_git_url("https://h/r.git#v1:docker/app/") == GitRef(
        "https://h/r.git", "v1", "docker/app"
    )
    assert parse_git_url("git@h:r.git") == GitRef("git@h:r.git", None, "")
    assert parse_git_url("git://h/r#:sub") == GitRef("git://h/r", None, "sub")
    assert parse_git_url("git://h/r#main:.") == GitRef("git://h/r", "main", "")


def test_keyed_fragment() -> None:
    ref = parse_git_url("git://h/r##ref=main,subdir=/a/b,commit=abc123")
    assert ref == GitRef("git://h/r", "main", "a/b", "abc123")
    assert parse_git_url("git://h/r##commit=abc123").ref == "abc123"  # the commit is the ref


def test_bad_fragments() -> None:
    with pytest.raises(ContextError, match="is not ref="):
        parse_git_url("git://h/r##branch=main")
    with pytest.raises(ContextError, match="leaves the repository"):
        parse_git_url("git://h/r#main:../up")


def test_name_hides_a_password() -> None:
    assert parse_git_url("https://u:s3cret@h/r.git#v1").name == "https://u:***@h/r.git#v1"
    with pytest.raises(ContextError) as caught:
        parse_git_url("https://u:s3cret@h/r.git#v1:../x")
    assert "s3cret" not in str(caught.value)
