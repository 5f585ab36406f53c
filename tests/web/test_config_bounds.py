"""Settings take the same bounds as the values they default: a setting that would make every
submit fail, or store an unreadable value, stops the service at start."""

from __future__ import annotations

import pytest

from app.config import ConfigError, Settings


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LITETASK_MAX_ATTEMPTS", "1001"),
        ("LITETASK_CACHE_TTL", "inf"),
        ("LITETASK_CACHE_TTL", "nan"),
        ("LITETASK_TASK_TIMEOUT", "inf"),
        ("LITETASK_TASK_TIMEOUT", "-1"),
        ("LITETASK_RETRY_BACKOFF", "nan"),
        ("LITETASK_STOP_TIMEOUT", "inf"),
        ("LITETASK_MAX_INTERRUPTIONS", "0"),
    ],
)
def test_out_of_bounds_settings_are_refused(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: value})


def test_bounded_settings_are_taken() -> None:
    settings = Settings.from_env(
        {"LITETASK_MAX_ATTEMPTS": "1000", "LITETASK_CACHE_TTL": "60", "LITETASK_TASK_TIMEOUT": "5"}
    )
    assert (settings.max_attempts, settings.cache_ttl, settings.task_timeout) == (1000, 60, 5)
