"""Settings: one frozen dataclass read from LITETASK_* environment variables.

Every setting has a default that works on a fresh machine; docs/configuration.md lists them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from app.cache.setup import CacheSettings
from app.events.retention import Retention

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./litetask.db"
ENV_PREFIX = "LITETASK_"
WEBHOOK_SCHEMES = ("standard", "github", "stripe", "none")
CACHE_BACKENDS = ("sqlite", "memory", "redis", "none")


class ConfigError(ValueError):
    """A LITETASK_* setting has a value litetask cannot use."""


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """How one `/webhooks/{task_type}` endpoint checks its deliveries. `secrets` holds every
    secret currently accepted (several while rotating); `headers` are the request headers
    passed to the task next to the body."""

    task_type: str
    scheme: str = "standard"
    secrets: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    task_modules: tuple[str, ...] = ("app.demo",)
    max_workers: int = 10
    task_timeout: float | None = None
    max_attempts: int = 1
    retry_backoff: float = 1.0
    max_interruptions: int = 3
    reconcile_interval: float = 30.0
    heartbeat_interval: float = 10.0
    stop_timeout: float = 10.0
    host: str = "127.0.0.1"
    port: int = 8000
    api_token: str | None = None
    webhook_secret: str | None = None
    webhook_scheme: str = "standard"
    webhooks: tuple[WebhookEndpoint, ...] = ()
    webhook_tolerance: int = 300
    session_ttl: int = 3600
    max_body_bytes: int = 1024 * 1024
    health_interval: float = 1.0
    log_level: str = "info"
    cache_backend: str = "sqlite"
    redis_url: str | None = None
    cache_ttl: float | None = None
    cache_max_size: int = 10_000
    event_retention_seconds: float = 7 * 24 * 3600.0
    event_retention_count: int = 1_000_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then LITETASK_* variables, then explicit overrides (e.g. CLI flags)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, str(f.type), raw)
        settings = cls(**values)
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given).validated()

    def validated(self) -> Settings:
        """Self, when every value is usable; ConfigError naming the variable otherwise."""
        for problem, message in self._problems():
            if problem:
                raise ConfigError(message)
        return self

    def _problems(self) -> list[tuple[bool, str]]:
        return [
            (self.max_workers < 1, "LITETASK_MAX_WORKERS must be at least 1"),
            (self.max_attempts < 1, "LITETASK_MAX_ATTEMPTS must be at least 1"),
            (self.max_body_bytes < 1024, "LITETASK_MAX_BODY_BYTES must be at least 1024"),
            (not 0 <= self.port < 65536, "LITETASK_PORT must be between 0 and 65535"),
            (self.health_interval < 0, "LITETASK_HEALTH_INTERVAL must not be negative"),
            (
                not (self.reconcile_interval > 0 and self.heartbeat_interval > 0),
                "LITETASK_RECONCILE_INTERVAL and LITETASK_HEARTBEAT_INTERVAL must be positive",
            ),
            (self.session_ttl < 1, "LITETASK_SESSION_TTL must be at least 1 second"),
            (self.webhook_tolerance < 1, "LITETASK_WEBHOOK_TOLERANCE must be at least 1"),
            (
                self.cache_backend not in CACHE_BACKENDS,
                f"LITETASK_CACHE_BACKEND must be one of {', '.join(CACHE_BACKENDS)}",
            ),
            (
                self.cache_backend == "redis" and not self.redis_url,
                "LITETASK_CACHE_BACKEND=redis needs LITETASK_REDIS_URL",
            ),
            (
                self.cache_ttl is not None and self.cache_ttl <= 0,
                "LITETASK_CACHE_TTL must be a positive number of seconds",
            ),
            (self.cache_max_size < 1, "LITETASK_CACHE_MAX_SIZE must be at least 1"),
            (
                self.event_retention_seconds <= 0 or self.event_retention_count < 1,
                "LITETASK_EVENT_RETENTION_SECONDS and _COUNT must be positive",
            ),
            (
                self.webhook_scheme not in WEBHOOK_SCHEMES,
                f"LITETASK_WEBHOOK_SCHEME must be one of {', '.join(WEBHOOK_SCHEMES)}",
            ),
        ]

    def cache(self) -> CacheSettings:
        """The worker's result-cache settings."""
        return CacheSettings(
            backend=self.cache_backend,  # type: ignore[arg-type]  # validated above
            redis_url=self.redis_url,
            default_ttl=self.cache_ttl,
            max_size=self.cache_max_size,
        )

    def event_retention(self) -> Retention:
        return Retention(max_age=self.event_retention_seconds, max_count=self.event_retention_count)

    def webhook_endpoint(self, task_type: str) -> WebhookEndpoint:
        """The endpoint configured for `task_type`, else one using the default secret."""
        for endpoint in self.webhooks:
            if endpoint.task_type == task_type:
                return endpoint
        secrets = (self.webhook_secret,) if self.webhook_secret else ()
        return WebhookEndpoint(task_type, self.webhook_scheme, secrets)


def parse_webhooks(raw: str) -> tuple[WebhookEndpoint, ...]:
    """LITETASK_WEBHOOKS: a JSON object mapping task types to
    `{"scheme": ..., "secret": str | [str, ...], "headers": [str, ...]}`."""
    try:
        spec = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"LITETASK_WEBHOOKS is not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise ConfigError("LITETASK_WEBHOOKS must be a JSON object keyed by task type")
    return tuple(_webhook_endpoint(name, value) for name, value in spec.items())


def _webhook_endpoint(task_type: str, spec: Any) -> WebhookEndpoint:
    where = f"LITETASK_WEBHOOKS[{task_type!r}]"
    if not isinstance(spec, dict) or set(spec) - {"scheme", "secret", "headers"}:
        raise ConfigError(f"{where} must be an object with scheme, secret and headers")
    scheme = spec.get("scheme", "standard")
    if scheme not in WEBHOOK_SCHEMES:
        raise ConfigError(f"{where}.scheme must be one of {', '.join(WEBHOOK_SCHEMES)}")
    secret = spec.get("secret", [])
    secrets = [secret] if isinstance(secret, str) else secret
    headers = spec.get("headers", [])
    if not _strings(secrets) or not _strings(headers):
        raise ConfigError(f"{where}: secret and headers must be strings or lists of strings")
    if scheme != "none" and not secrets:
        raise ConfigError(f"{where} needs a secret for scheme {scheme!r}")
    return WebhookEndpoint(task_type, scheme, tuple(secrets), tuple(h.lower() for h in headers))


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _parse(name: str, type_name: str, raw: str) -> Any:
    env_name = ENV_PREFIX + name.upper()
    if name == "webhooks":
        return parse_webhooks(raw)
    try:
        if type_name.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("float"):
            return float(raw)
    except ValueError:
        raise ConfigError(f"{env_name}={raw!r} is not a valid {type_name}") from None
    return raw
