"""ExitCode: the statuses a user (and a script) sees, pinned to docs/commands.md's table."""

from __future__ import annotations

import click

from layerbuild.errors import (
    BuildError,
    CacheError,
    CheckViolation,
    ContextError,
    DockerfileError,
    ExitCode,
    ExportError,
    FetchError,
    HostError,
    ImageFormatError,
    InvalidReference,
    LayerbuildError,
    NotCached,
    RegistryError,
    StoreError,
    UnsupportedError,
)


def test_statuses_are_those_documented() -> None:
    assert {name: int(code) for name, code in ExitCode.__members__.items()} == {
        "OK": 0,
        "FAILURE": 1,
        "DOCKERFILE": 2,
        "USAGE": 2,
        "CONTEXT": 3,
        "BUILD": 4,
        "STORE": 5,
        "IMAGE_FORMAT": 6,
        "EXPORT": 7,
        "REGISTRY": 8,
        "HOST": 9,
        "FSCK_PROBLEMS": 10,
        "CHECKS": 11,
        "NOT_CACHED": 12,
        "WOULD_BUILD": 1,
        "DIFFERENT": 1,
        "INTERRUPTED": 130,
    }


def test_usage_is_clicks_own_status() -> None:
    assert click.UsageError("x").exit_code == ExitCode.USAGE
    assert click.BadParameter("x").exit_code == ExitCode.USAGE


def test_each_error_class_names_its_status() -> None:
    expected = {
        LayerbuildError: ExitCode.FAILURE,
        DockerfileError: ExitCode.DOCKERFILE,
        InvalidReference: ExitCode.USAGE,
        CacheError: ExitCode.USAGE,
        ContextError: ExitCode.CONTEXT,
        BuildError: ExitCode.BUILD,
        UnsupportedError: ExitCode.BUILD,
        StoreError: ExitCode.STORE,
        ImageFormatError: ExitCode.IMAGE_FORMAT,
        ExportError: ExitCode.EXPORT,
        RegistryError: ExitCode.REGISTRY,
        FetchError: ExitCode.REGISTRY,
        HostError: ExitCode.HOST,
        CheckViolation: ExitCode.CHECKS,
        NotCached: ExitCode.NOT_CACHED,
    }
    for cls, code in expected.items():
        assert isinstance(cls.exit_code, ExitCode), cls
        assert cls.exit_code == code, cls
