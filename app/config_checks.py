"""The checks every setting goes through at start: bounds, closed sets of values, and how
settings fit together. Each names the LITETASK_* variable and what it accepts."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING

from app.bounds import MAX_ATTEMPTS_LIMIT, MAX_MISSED_SLOTS_LIMIT, MAX_SECONDS
from app.db.engine import MAX_READER_POOL_SIZE
from app.env_values import ConfigError
from app.webhook_config import WEBHOOK_SCHEMES

if TYPE_CHECKING:
    from app.config import Settings

CACHE_BACKENDS = ("sqlite", "memory", "redis", "none")
MAX_THREAD_WORKERS = 1024
LOG_FORMATS = ("text", "json")
# What Starlette's TrustedHostMiddleware matches: "*", "*.domain", a host name or [IPv6].
HOST_PATTERN = re.compile(r"\*|(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*|\[[0-9A-Fa-f:.]+\]")


def problems(s: Settings) -> list[tuple[bool, str]]:
    """(is it wrong, what to say) for every setting with a bound or a closed set."""
    return [
        (s.max_workers < 1, "LITETASK_MAX_WORKERS must be at least 1"),
        (
            not 1 <= s.thread_workers <= MAX_THREAD_WORKERS,
            f"LITETASK_THREAD_WORKERS must be from 1 to {MAX_THREAD_WORKERS}",
        ),
        (
            not 1 <= s.max_attempts <= MAX_ATTEMPTS_LIMIT,
            f"LITETASK_MAX_ATTEMPTS must be from 1 to {MAX_ATTEMPTS_LIMIT}",
        ),
        (
            not seconds_in_bounds(s.task_timeout),
            f"LITETASK_TASK_TIMEOUT must be positive seconds, at most {MAX_SECONDS:.0f}",
        ),
        (
            not seconds_in_bounds(s.retry_backoff),
            "LITETASK_RETRY_BACKOFF must be a positive number of seconds",
        ),
        (
            not seconds_in_bounds(s.stop_timeout),
            "LITETASK_STOP_TIMEOUT must be a positive number of seconds",
        ),
        (s.max_interruptions < 1, "LITETASK_MAX_INTERRUPTIONS must be at least 1"),
        (
            not 1 <= s.reader_pool_size <= MAX_READER_POOL_SIZE,
            f"LITETASK_READER_POOL_SIZE must be from 1 to {MAX_READER_POOL_SIZE}",
        ),
        (
            not 1 <= s.max_missed_slots <= MAX_MISSED_SLOTS_LIMIT,
            f"LITETASK_MAX_MISSED_SLOTS must be from 1 to {MAX_MISSED_SLOTS_LIMIT}",
        ),
        (s.max_body_bytes < 1024, "LITETASK_MAX_BODY_BYTES must be at least 1024"),
        (s.body_timeout <= 0, "LITETASK_BODY_TIMEOUT must be a positive number of seconds"),
        (s.read_timeout < 1, "LITETASK_READ_TIMEOUT must be at least 1 second"),
        (
            not 1 <= s.sse_max_streams_per_client <= s.sse_max_streams,
            "LITETASK_SSE_MAX_STREAMS_PER_CLIENT must be 1 to LITETASK_SSE_MAX_STREAMS",
        ),
        (
            not 0.05 <= s.sse_cursor_interval <= 3600,
            "LITETASK_SSE_CURSOR_INTERVAL must be 0.05 to 3600 seconds",
        ),
        (not 0 <= s.port < 65536, "LITETASK_PORT must be between 0 and 65535"),
        (
            s.metrics_port is not None and not 0 < s.metrics_port < 65536,
            "LITETASK_METRICS_PORT must be between 1 and 65535 (unset: metrics on the API "
            "port only)",
        ),
        (
            s.metrics_port == s.port,
            "LITETASK_METRICS_PORT must differ from LITETASK_PORT",
        ),
        (
            s.log_format not in LOG_FORMATS,
            f"LITETASK_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}",
        ),
        (s.health_interval < 0, "LITETASK_HEALTH_INTERVAL must not be negative"),
        (
            s.loop_lag_threshold < 0,
            "LITETASK_LOOP_LAG_THRESHOLD must not be negative (0 turns the watchdog off)",
        ),
        (s.busy_timeout < 0, "LITETASK_BUSY_TIMEOUT must not be negative"),
        (s.write_retry_seconds < 0, "LITETASK_WRITE_RETRY_SECONDS must not be negative"),
        (
            not (s.reconcile_interval > 0 and s.heartbeat_interval > 0),
            "LITETASK_RECONCILE_INTERVAL and LITETASK_HEARTBEAT_INTERVAL must be positive",
        ),
        (s.session_ttl < 1, "LITETASK_SESSION_TTL must be at least 1 second"),
        (s.webhook_tolerance < 1, "LITETASK_WEBHOOK_TOLERANCE must be at least 1"),
        (
            s.webhook_replay_window < 1,
            "LITETASK_WEBHOOK_REPLAY_WINDOW must be at least 1 second",
        ),
        (
            bool(s.webhook_secret) and not s.webhook_types,
            "LITETASK_WEBHOOK_SECRET applies only to the task types listed in "
            "LITETASK_WEBHOOK_TYPES (comma-separated); set them, or configure endpoints "
            "in LITETASK_WEBHOOKS",
        ),
        (
            bool(s.webhook_types) and not s.webhook_secret and s.webhook_scheme != "none",
            "LITETASK_WEBHOOK_TYPES needs LITETASK_WEBHOOK_SECRET",
        ),
        (
            s.cache_backend not in CACHE_BACKENDS,
            f"LITETASK_CACHE_BACKEND must be one of {', '.join(CACHE_BACKENDS)}",
        ),
        (
            s.cache_backend == "redis" and not s.redis_url,
            "LITETASK_CACHE_BACKEND=redis needs LITETASK_REDIS_URL",
        ),
        (
            not seconds_in_bounds(s.cache_ttl),
            f"LITETASK_CACHE_TTL must be positive seconds, at most {MAX_SECONDS:.0f}",
        ),
        (s.cache_max_size < 1, "LITETASK_CACHE_MAX_SIZE must be at least 1"),
        (
            not s.cache_timeout > 0,
            "LITETASK_CACHE_TIMEOUT must be a positive number of seconds",
        ),
        (
            s.event_retention_seconds <= 0 or s.event_retention_count < 1,
            "LITETASK_EVENT_RETENTION_SECONDS and _COUNT must be positive",
        ),
        *_retention_problems(s),
        (
            not 0 < s.prune_interval <= MAX_SECONDS,
            "LITETASK_PRUNE_INTERVAL must be a positive number of seconds",
        ),
        (not 1 <= s.prune_batch <= 10_000, "LITETASK_PRUNE_BATCH must be 1 to 10000"),
        (
            s.webhook_dedupe_seconds < s.webhook_replay_window,
            "LITETASK_WEBHOOK_DEDUPE_SECONDS must be at least LITETASK_WEBHOOK_REPLAY_WINDOW",
        ),
        (
            s.webhook_scheme not in WEBHOOK_SCHEMES,
            f"LITETASK_WEBHOOK_SCHEME must be one of {', '.join(WEBHOOK_SCHEMES)}",
        ),
    ]


def _retention_problems(s: Settings) -> list[tuple[bool, str]]:
    return [
        (
            seconds is not None and not 0 <= seconds <= MAX_SECONDS,
            f"LITETASK_{name.upper()}_RETENTION_SECONDS must be 0 (keep forever) or "
            f"positive seconds, at most {MAX_SECONDS:.0f}",
        )
        for name, seconds in s.retentions().items()
    ]


def check_trusted_proxies(values: tuple[str, ...]) -> None:
    if "*" in values and len(values) > 1:
        raise ConfigError("LITETASK_TRUSTED_PROXIES: * (trust every peer) stands alone")
    for value in values:
        if value == "*":
            continue
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ConfigError(
                f"LITETASK_TRUSTED_PROXIES: {value!r} is not an IP address or network "
                "(e.g. 10.0.0.0/8, fd00::/8, 127.0.0.1) or *"
            ) from None


def check_allowed_hosts(values: tuple[str, ...]) -> None:
    for value in values:
        if not HOST_PATTERN.fullmatch(value):
            raise ConfigError(
                f"LITETASK_ALLOWED_HOSTS: {value!r} is not a host name, *.domain or *"
            )


def seconds_in_bounds(value: float | None) -> bool:
    """None (unset), or a finite positive number of seconds within litetask's bounds."""
    return value is None or 0 < value <= MAX_SECONDS
