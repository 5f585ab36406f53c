"""Settings: one frozen dataclass read from LITETASK_* environment variables.

Every setting has a default that works on a fresh machine; docs/configuration.md lists them.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from app.access import token_problem
from app.bounds import DEFAULT_MISSED_SLOTS
from app.cache.setup import CacheSettings
from app.cache.task_adapter import DEFAULT_CACHE_TIMEOUT
from app.config_checks import check_allowed_hosts, check_trusted_proxies, problems
from app.db.engine import DEFAULT_READER_POOL_SIZE
from app.env_values import ConfigError as ConfigError  # raised here, caught by importers
from app.env_values import (
    check_database_url,
    check_log_level,
    mask_secret,
    mask_url,
    parse_value,
)
from app.events.retention import Retention
from app.webhook_config import WebhookEndpoint, check_endpoint, parse_webhooks
from app.worker.pruner import PrunePolicy
from app.worker.retention import WEEK, TaskRetention
from app.worker.threads import DEFAULT_THREAD_WORKERS

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./litetask.db"
ENV_PREFIX = "LITETASK_"
# Host header names (port aside; an IPv6 address keeps its brackets) a loopback service answers.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
# Set-but-empty is a value for these (a configuration error), not "unset".
EMPTY_IS_A_VALUE = frozenset({"api_token"})
DEMO_MODULE = "app.demo"
# Shown masked by repr(Settings): secrets as ***, URLs without their password.
SECRET_FIELDS = frozenset({"api_token", "webhook_secret"})
URL_FIELDS = frozenset({"database_url", "redis_url"})


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    task_modules: tuple[str, ...] = ()
    demo: bool = False
    max_workers: int = 10
    thread_workers: int = DEFAULT_THREAD_WORKERS
    task_timeout: float | None = None
    max_attempts: int = 1
    retry_backoff: float = 1.0
    max_interruptions: int = 3
    max_missed_slots: int = DEFAULT_MISSED_SLOTS
    reconcile_interval: float = 30.0
    heartbeat_interval: float = 10.0
    stop_timeout: float = 10.0
    busy_timeout: float = 5.0
    reader_pool_size: int = DEFAULT_READER_POOL_SIZE
    write_retry_seconds: float = 5.0
    host: str = "127.0.0.1"
    port: int = 8000
    api_token: str | None = None
    insecure_no_auth: bool = False
    webhook_secret: str | None = None
    webhook_scheme: str = "standard"
    webhook_types: tuple[str, ...] = ()
    webhooks: tuple[WebhookEndpoint, ...] = ()
    webhook_tolerance: int = 300
    webhook_replay_window: int = 86400
    session_ttl: int = 3600
    trusted_proxies: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = 1024 * 1024
    body_timeout: float = 30.0
    read_timeout: float = 120.0
    sse_max_streams: int = 1000
    sse_max_streams_per_client: int = 32
    sse_cursor_interval: float = 15.0
    health_interval: float = 1.0
    loop_lag_threshold: float = 1.0
    log_level: str = "info"
    log_format: str = "text"
    access_log: bool = False
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    cache_backend: str = "sqlite"
    redis_url: str | None = None
    cache_ttl: float | None = None
    cache_max_size: int = 10_000
    cache_timeout: float = DEFAULT_CACHE_TIMEOUT
    event_retention_seconds: float = 7 * 24 * 3600.0
    event_retention_count: int = 1_000_000
    # Retention of finished tasks (docs/operations.md): 0 keeps them forever; a status's
    # own setting, when set, replaces LITETASK_TASK_RETENTION_SECONDS for that status.
    task_retention_seconds: float = WEEK
    completed_retention_seconds: float | None = None
    failed_retention_seconds: float | None = None
    cancelled_retention_seconds: float | None = None
    webhook_dedupe_seconds: float = WEEK
    prune_interval: float = 60.0
    prune_batch: int = 500
    wal_checkpoint: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then LITETASK_* variables, then explicit overrides (e.g. CLI flags)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and (raw != "" or f.name in EMPTY_IS_A_VALUE):
                values[f.name] = _parse(f.name, str(f.type), raw)
        settings = cls(**values)
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given).validated()

    def validated(self) -> Settings:
        """Self, when every value is usable; ConfigError naming the variable otherwise."""
        check_database_url(self.database_url)
        check_log_level(self.log_level)
        for problem, message in problems(self):
            if problem:
                raise ConfigError(message)
        check_trusted_proxies(self.trusted_proxies)
        check_allowed_hosts(self.allowed_hosts)
        for endpoint in self.webhook_endpoints():
            check_endpoint(endpoint, self.on_loopback)
        bad_token = token_problem(self.api_token)
        if bad_token is not None:
            raise ConfigError(bad_token)
        return self

    def __repr__(self) -> str:
        """Every setting, secrets masked: safe to log."""
        shown = ", ".join(
            f"{f.name}={_shown(f.name, getattr(self, f.name))!r}" for f in fields(self)
        )
        return f"Settings({shown})"

    @property
    def on_loopback(self) -> bool:
        """True when the service listens on this machine only (LITETASK_HOST)."""
        host = self.host.strip("[]")
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def host_allowlist(self) -> tuple[str, ...]:
        """LITETASK_ALLOWED_HOSTS, else localhost names on loopback, else any host ("*")."""
        if self.allowed_hosts:
            return self.allowed_hosts
        return LOOPBACK_NAMES if self.on_loopback else ("*",)

    @property
    def modules(self) -> tuple[str, ...]:
        """The task modules to import: the demo tasks first when asked for, then the named."""
        demo = (DEMO_MODULE,) if self.demo and DEMO_MODULE not in self.task_modules else ()
        return demo + self.task_modules

    def retentions(self) -> dict[str, float | None]:
        """LITETASK_<NAME>_RETENTION_SECONDS by lower-case name: "task" (the default for
        every finished status) and the statuses' own (None: unset)."""
        return {
            "task": self.task_retention_seconds,
            "completed": self.completed_retention_seconds,
            "failed": self.failed_retention_seconds,
            "cancelled": self.cancelled_retention_seconds,
        }

    def cache(self) -> CacheSettings:
        """The worker's result-cache settings."""
        return CacheSettings(
            backend=self.cache_backend,  # type: ignore[arg-type]  # validated above
            redis_url=self.redis_url,
            default_ttl=self.cache_ttl,
            max_size=self.cache_max_size,
            timeout=self.cache_timeout,
        )

    def prune_policy(self) -> PrunePolicy:
        """What the background pruner keeps (0 seconds: a status kept forever)."""
        given = self.retentions()
        default = _forever_if_zero(given.pop("task"))
        by_status = {s: _forever_if_zero(v) for s, v in given.items() if v is not None}
        return PrunePolicy(
            tasks=TaskRetention(default, by_status),
            events=Retention(self.event_retention_seconds, self.event_retention_count),
            webhook_dedupe=self.webhook_dedupe_seconds,
            interval=self.prune_interval,
            batch=self.prune_batch,
            checkpoint=self.wal_checkpoint,
        )

    def webhook_endpoint(self, task_type: str) -> WebhookEndpoint | None:
        """The endpoint configured for `task_type` (in LITETASK_WEBHOOKS, or listed in
        LITETASK_WEBHOOK_TYPES with the default secret); None: there is no such endpoint."""
        for endpoint in self.webhook_endpoints():
            if endpoint.task_type == task_type:
                return endpoint
        return None

    def webhook_endpoints(self) -> tuple[WebhookEndpoint, ...]:
        """Every configured endpoint; LITETASK_WEBHOOKS entries win over the default."""
        named = {e.task_type for e in self.webhooks}
        secrets = (self.webhook_secret,) if self.webhook_secret else ()
        defaults = tuple(
            WebhookEndpoint(t, self.webhook_scheme, secrets, where="LITETASK_WEBHOOK_SECRET")
            for t in self.webhook_types
            if t not in named
        )
        return self.webhooks + defaults


def _forever_if_zero(seconds: float | None) -> float | None:
    return None if seconds == 0 else seconds


def _shown(name: str, value: Any) -> Any:
    if name in SECRET_FIELDS:
        return mask_secret(value)
    if name in URL_FIELDS and value is not None:
        return mask_url(value)
    return value


def _parse(name: str, type_name: str, raw: str) -> Any:
    if name == "webhooks":
        return parse_webhooks(raw)
    return parse_value(ENV_PREFIX + name.upper(), type_name, raw)
