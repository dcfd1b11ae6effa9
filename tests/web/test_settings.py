"""Settings from UNITGUARD_* variables: the visit cache and rate limits, with clear errors."""

from __future__ import annotations

import pytest

from plugin.web.settings import Settings, SettingsError

KEY = "k" * 32


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (
        "UNITGUARD_VISIT_CACHE_SECONDS",
        "UNITGUARD_VISIT_CACHE_SIZE",
        "UNITGUARD_RATE_LIMITS",
        "UNITGUARD_RATE_LAUNCH",
        "UNITGUARD_RATE_ACTIONS",
        "UNITGUARD_RATE_CDS",
        "UNITGUARD_RATE_TASK_API",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UNITGUARD_SECRET_KEY", KEY)


def test_defaults_cache_a_minute_and_limit_every_surface():
    settings = Settings.from_env()
    assert settings.visit_cache_seconds == 60 and settings.visit_cache_size == 256
    assert settings.rate_per_minute() == {
        "launch": 60,
        "actions": 60,
        "cds": 600,
        "task_api": 300,
        "queue": 60,
        "refresh": 10,
        "export": 10,
    }
    assert settings.idle_minutes == 15


def test_variables_set_the_cache_and_the_limits(monkeypatch):
    monkeypatch.setenv("UNITGUARD_VISIT_CACHE_SECONDS", "0")
    monkeypatch.setenv("UNITGUARD_RATE_CDS", "1200")
    settings = Settings.from_env()
    assert settings.visit_cache_seconds == 0 and settings.rate_per_minute()["cds"] == 1200
    monkeypatch.setenv("UNITGUARD_RATE_LIMITS", "off")
    assert Settings.from_env().rate_per_minute() == {}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("UNITGUARD_RATE_LAUNCH", "ten", "UNITGUARD_RATE_LAUNCH must be a whole number"),
        ("UNITGUARD_RATE_TASK_API", "-1", "UNITGUARD_RATE_TASK_API must be 0"),
        ("UNITGUARD_VISIT_CACHE_SECONDS", "-5", "UNITGUARD_VISIT_CACHE_SECONDS must be 0"),
        ("UNITGUARD_VISIT_CACHE_SIZE", "0", "UNITGUARD_VISIT_CACHE_SIZE must be at least 1"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        Settings.from_env()
