"""Retry-After in both of its forms, bounded, and the delay it makes with the backoff."""

from __future__ import annotations

import email.utils

import pytest

from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.transport import Transport, retry_after_seconds

NOW = 1_800_000_000.0


def test_delta_seconds_and_http_date_are_both_read() -> None:
    assert retry_after_seconds("3", NOW) == 3.0
    assert retry_after_seconds(" 0 ", NOW) == 0.0
    date = email.utils.formatdate(NOW + 7, usegmt=True)
    assert retry_after_seconds(date, NOW) == 7.0


def test_retry_after_is_bounded_and_never_negative() -> None:
    assert retry_after_seconds("3600", NOW) == 30.0
    assert retry_after_seconds(email.utils.formatdate(NOW + 3600, usegmt=True), NOW) == 30.0
    assert retry_after_seconds(email.utils.formatdate(NOW - 60, usegmt=True), NOW) == 0.0


def test_unreadable_or_absent_retry_after_leaves_the_backoff() -> None:
    for value in (None, "", "soon", "-5", "1.5", "Sun, 99 Foo 2026 00:00:00"):
        assert retry_after_seconds(value, NOW) is None, value
    transport = Transport(RegistryOptions(backoff=0.5))
    assert transport.retry_delay(0, "soon") == 0.5
    assert transport.retry_delay(2, None) == 2.0
    assert transport.retry_delay(0, "4") == 4.0
    assert transport.retry_delay(3, "1") == 4.0  # the backoff is a floor
    assert transport.retry_delay(0, 9.0) == 9.0  # seconds already read from an error


def test_retries_backoff_and_timeout_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LAYERBUILD_REGISTRY_RETRIES", "1")
    monkeypatch.setenv("LAYERBUILD_REGISTRY_BACKOFF", "0.05")
    monkeypatch.setenv("LAYERBUILD_REGISTRY_TIMEOUT", "2.5")
    assert (RegistryOptions().retries, RegistryOptions().backoff) == (1, 0.05)
    assert RegistryOptions().timeout == 2.5
    monkeypatch.setenv("LAYERBUILD_REGISTRY_TIMEOUT", "soon")
    assert RegistryOptions().timeout == 120.0
    assert "ignoring LAYERBUILD_REGISTRY_TIMEOUT='soon'" in capsys.readouterr().err
