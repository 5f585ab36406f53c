"""Settings take the same bounds as the values they default: a setting that would make every
submit fail, or store an unreadable value, stops the service at start."""

from __future__ import annotations

import pytest

from app.config import ConfigError, Settings


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LITETASK_MAX_ATTEMPTS", "1001"),
        ("LITETASK_THREAD_WORKERS", "0"),
        ("LITETASK_THREAD_WORKERS", "1025"),
        ("LITETASK_CACHE_TTL", "inf"),
        ("LITETASK_CACHE_TTL", "nan"),
        ("LITETASK_TASK_TIMEOUT", "inf"),
        ("LITETASK_TASK_TIMEOUT", "-1"),
        ("LITETASK_RETRY_BACKOFF", "nan"),
        ("LITETASK_STOP_TIMEOUT", "inf"),
        ("LITETASK_MAX_INTERRUPTIONS", "0"),
        ("LITETASK_TASK_RETENTION_SECONDS", "-1"),
        ("LITETASK_FAILED_RETENTION_SECONDS", "-5"),
        ("LITETASK_PRUNE_INTERVAL", "0"),
        ("LITETASK_PRUNE_BATCH", "0"),
        ("LITETASK_PRUNE_BATCH", "10001"),
        ("LITETASK_MAX_MISSED_SLOTS", "0"),
        ("LITETASK_MAX_MISSED_SLOTS", "10001"),
        ("LITETASK_READER_POOL_SIZE", "0"),
        ("LITETASK_READER_POOL_SIZE", "101"),
        ("LITETASK_WEBHOOK_DEDUPE_SECONDS", "3600"),  # shorter than the replay window
    ],
)
def test_out_of_bounds_settings_are_refused(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: value})


def test_bounded_settings_are_taken() -> None:
    settings = Settings.from_env(
        {
            "LITETASK_MAX_ATTEMPTS": "1000",
            "LITETASK_CACHE_TTL": "60",
            "LITETASK_TASK_TIMEOUT": "5",
            "LITETASK_THREAD_WORKERS": "3",
            "LITETASK_MAX_MISSED_SLOTS": "10000",
            "LITETASK_READER_POOL_SIZE": "100",
        }
    )
    assert settings.reader_pool_size == 100
    assert Settings.from_env({}).reader_pool_size == 4
    assert (settings.max_attempts, settings.cache_ttl, settings.task_timeout) == (1000, 60, 5)
    assert settings.thread_workers == 3
    assert settings.max_missed_slots == 10000
    assert Settings.from_env({}).max_missed_slots == 100


def test_retention_settings_make_the_pruners_policy() -> None:
    """Each finished status is kept LITETASK_TASK_RETENTION_SECONDS unless it has its own
    setting; 0 keeps forever; events are never kept longer than the shortest of them."""
    policy = Settings.from_env(
        {
            "LITETASK_TASK_RETENTION_SECONDS": "3600",
            "LITETASK_FAILED_RETENTION_SECONDS": "0",
            "LITETASK_CANCELLED_RETENTION_SECONDS": "60",
            "LITETASK_PRUNE_INTERVAL": "5",
            "LITETASK_PRUNE_BATCH": "100",
            "LITETASK_WEBHOOK_DEDUPE_SECONDS": "90000",
        }
    ).prune_policy()
    assert dict(policy.tasks.kept()) == {"cancelled": 60, "completed": 3600}
    assert (policy.interval, policy.batch, policy.webhook_dedupe) == (5, 100, 90000)
    assert policy.event_retention().max_age == 60
    assert policy.event_retention().batch == 100
    default = Settings.from_env({}).prune_policy()
    assert dict(default.tasks.kept()) == dict.fromkeys(["cancelled", "completed", "failed"], 604800)
