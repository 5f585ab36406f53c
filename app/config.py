"""Settings: one frozen dataclass read from LITETASK_* environment variables.

Every setting has a default that works on a fresh machine; docs/configuration.md lists them.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from app.access import token_problem
from app.bounds import MAX_ATTEMPTS_LIMIT, MAX_SECONDS
from app.cache.setup import CacheSettings
from app.cache.task_adapter import DEFAULT_CACHE_TIMEOUT
from app.env_values import ConfigError as ConfigError  # raised here, caught by importers
from app.env_values import (
    check_database_url,
    check_log_level,
    mask_secret,
    mask_url,
    parse_value,
)
from app.events.retention import Retention
from app.worker.pruner import PrunePolicy
from app.worker.retention import WEEK, TaskRetention

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./litetask.db"
ENV_PREFIX = "LITETASK_"
WEBHOOK_SCHEMES = ("standard", "github", "stripe", "none")
CACHE_BACKENDS = ("sqlite", "memory", "redis", "none")
LOG_FORMATS = ("text", "json")
# Host header names (port aside; an IPv6 address keeps its brackets) a loopback service answers.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
# What Starlette's TrustedHostMiddleware matches: "*", "*.domain", a host name or [IPv6].
HOST_PATTERN = re.compile(r"\*|(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*|\[[0-9A-Fa-f:.]+\]")
# Set-but-empty is a value for these (a configuration error), not "unset".
EMPTY_IS_A_VALUE = frozenset({"api_token"})
DEMO_MODULE = "app.demo"
# Shown masked by repr(Settings): secrets as ***, URLs without their password.
SECRET_FIELDS = frozenset({"api_token", "webhook_secret"})
URL_FIELDS = frozenset({"database_url", "redis_url"})


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """How one `/webhooks/{task_type}` endpoint checks its deliveries. `secrets` holds every
    secret currently accepted (several while rotating); `headers` are the request headers
    passed to the task next to the body."""

    task_type: str
    scheme: str = "standard"
    secrets: tuple[str, ...] = field(default=(), repr=False)
    headers: tuple[str, ...] = ()
    # The setting it came from, for error messages.
    where: str = "LITETASK_WEBHOOKS"


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    task_modules: tuple[str, ...] = ()
    demo: bool = False
    max_workers: int = 10
    task_timeout: float | None = None
    max_attempts: int = 1
    retry_backoff: float = 1.0
    max_interruptions: int = 3
    reconcile_interval: float = 30.0
    heartbeat_interval: float = 10.0
    stop_timeout: float = 10.0
    busy_timeout: float = 5.0
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
        for problem, message in self._problems():
            if problem:
                raise ConfigError(message)
        _check_trusted_proxies(self.trusted_proxies)
        _check_allowed_hosts(self.allowed_hosts)
        for endpoint in self.webhook_endpoints():
            _check_endpoint(endpoint, self.on_loopback)
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

    def _problems(self) -> list[tuple[bool, str]]:
        return [
            (self.max_workers < 1, "LITETASK_MAX_WORKERS must be at least 1"),
            (
                not 1 <= self.max_attempts <= MAX_ATTEMPTS_LIMIT,
                f"LITETASK_MAX_ATTEMPTS must be from 1 to {MAX_ATTEMPTS_LIMIT}",
            ),
            (
                not _seconds_in_bounds(self.task_timeout),
                f"LITETASK_TASK_TIMEOUT must be positive seconds, at most {MAX_SECONDS:.0f}",
            ),
            (
                not _seconds_in_bounds(self.retry_backoff),
                "LITETASK_RETRY_BACKOFF must be a positive number of seconds",
            ),
            (
                not _seconds_in_bounds(self.stop_timeout),
                "LITETASK_STOP_TIMEOUT must be a positive number of seconds",
            ),
            (self.max_interruptions < 1, "LITETASK_MAX_INTERRUPTIONS must be at least 1"),
            (self.max_body_bytes < 1024, "LITETASK_MAX_BODY_BYTES must be at least 1024"),
            (self.body_timeout <= 0, "LITETASK_BODY_TIMEOUT must be a positive number of seconds"),
            (self.read_timeout < 1, "LITETASK_READ_TIMEOUT must be at least 1 second"),
            (
                not 1 <= self.sse_max_streams_per_client <= self.sse_max_streams,
                "LITETASK_SSE_MAX_STREAMS_PER_CLIENT must be 1 to LITETASK_SSE_MAX_STREAMS",
            ),
            (
                not 0.05 <= self.sse_cursor_interval <= 3600,
                "LITETASK_SSE_CURSOR_INTERVAL must be 0.05 to 3600 seconds",
            ),
            (not 0 <= self.port < 65536, "LITETASK_PORT must be between 0 and 65535"),
            (
                self.metrics_port is not None and not 0 < self.metrics_port < 65536,
                "LITETASK_METRICS_PORT must be between 1 and 65535 (unset: metrics on the API "
                "port only)",
            ),
            (
                self.metrics_port == self.port,
                "LITETASK_METRICS_PORT must differ from LITETASK_PORT",
            ),
            (
                self.log_format not in LOG_FORMATS,
                f"LITETASK_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}",
            ),
            (self.health_interval < 0, "LITETASK_HEALTH_INTERVAL must not be negative"),
            (
                self.loop_lag_threshold < 0,
                "LITETASK_LOOP_LAG_THRESHOLD must not be negative (0 turns the watchdog off)",
            ),
            (self.busy_timeout < 0, "LITETASK_BUSY_TIMEOUT must not be negative"),
            (self.write_retry_seconds < 0, "LITETASK_WRITE_RETRY_SECONDS must not be negative"),
            (
                not (self.reconcile_interval > 0 and self.heartbeat_interval > 0),
                "LITETASK_RECONCILE_INTERVAL and LITETASK_HEARTBEAT_INTERVAL must be positive",
            ),
            (self.session_ttl < 1, "LITETASK_SESSION_TTL must be at least 1 second"),
            (self.webhook_tolerance < 1, "LITETASK_WEBHOOK_TOLERANCE must be at least 1"),
            (
                self.webhook_replay_window < 1,
                "LITETASK_WEBHOOK_REPLAY_WINDOW must be at least 1 second",
            ),
            (
                bool(self.webhook_secret) and not self.webhook_types,
                "LITETASK_WEBHOOK_SECRET applies only to the task types listed in "
                "LITETASK_WEBHOOK_TYPES (comma-separated); set them, or configure endpoints "
                "in LITETASK_WEBHOOKS",
            ),
            (
                bool(self.webhook_types)
                and not self.webhook_secret
                and self.webhook_scheme != "none",
                "LITETASK_WEBHOOK_TYPES needs LITETASK_WEBHOOK_SECRET",
            ),
            (
                self.cache_backend not in CACHE_BACKENDS,
                f"LITETASK_CACHE_BACKEND must be one of {', '.join(CACHE_BACKENDS)}",
            ),
            (
                self.cache_backend == "redis" and not self.redis_url,
                "LITETASK_CACHE_BACKEND=redis needs LITETASK_REDIS_URL",
            ),
            (
                not _seconds_in_bounds(self.cache_ttl),
                f"LITETASK_CACHE_TTL must be positive seconds, at most {MAX_SECONDS:.0f}",
            ),
            (self.cache_max_size < 1, "LITETASK_CACHE_MAX_SIZE must be at least 1"),
            (
                not self.cache_timeout > 0,
                "LITETASK_CACHE_TIMEOUT must be a positive number of seconds",
            ),
            (
                self.event_retention_seconds <= 0 or self.event_retention_count < 1,
                "LITETASK_EVENT_RETENTION_SECONDS and _COUNT must be positive",
            ),
            *self._retention_problems(),
            (
                not 0 < self.prune_interval <= MAX_SECONDS,
                "LITETASK_PRUNE_INTERVAL must be a positive number of seconds",
            ),
            (not 1 <= self.prune_batch <= 10_000, "LITETASK_PRUNE_BATCH must be 1 to 10000"),
            (
                self.webhook_dedupe_seconds < self.webhook_replay_window,
                "LITETASK_WEBHOOK_DEDUPE_SECONDS must be at least LITETASK_WEBHOOK_REPLAY_WINDOW",
            ),
            (
                self.webhook_scheme not in WEBHOOK_SCHEMES,
                f"LITETASK_WEBHOOK_SCHEME must be one of {', '.join(WEBHOOK_SCHEMES)}",
            ),
        ]

    def _retentions(self) -> dict[str, float | None]:
        """LITETASK_<NAME>_RETENTION_SECONDS by lower-case name: "task" (the default for
        every finished status) and the statuses' own (None: unset)."""
        return {
            "task": self.task_retention_seconds,
            "completed": self.completed_retention_seconds,
            "failed": self.failed_retention_seconds,
            "cancelled": self.cancelled_retention_seconds,
        }

    def _retention_problems(self) -> list[tuple[bool, str]]:
        return [
            (
                seconds is not None and not 0 <= seconds <= MAX_SECONDS,
                f"LITETASK_{name.upper()}_RETENTION_SECONDS must be 0 (keep forever) or "
                f"positive seconds, at most {MAX_SECONDS:.0f}",
            )
            for name, seconds in self._retentions().items()
        ]

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
        given = self._retentions()
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
    return WebhookEndpoint(
        task_type, scheme, tuple(secrets), tuple(h.lower() for h in headers), where
    )


def _check_endpoint(endpoint: WebhookEndpoint, on_loopback: bool) -> None:
    """Scheme `none` only on loopback; Standard Webhooks `whsec_` secrets must decode."""
    if endpoint.scheme == "none" and not on_loopback:
        raise ConfigError(
            f"{endpoint.where}: webhook scheme none (unsigned) for {endpoint.task_type!r} is "
            "refused off loopback; give the endpoint a secret and a signing scheme"
        )
    if endpoint.scheme == "standard":
        for secret in endpoint.secrets:
            if standard_key(secret) is None:
                raise ConfigError(
                    f"{endpoint.where}: the secret of {endpoint.task_type!r} starts with "
                    "whsec_ but the rest is not base64 (copy it whole from the sender)"
                )


def standard_key(secret: str) -> bytes | None:
    """The HMAC key of a Standard Webhooks secret: `whsec_<base64>` decodes (padding may be
    left out, as senders such as Svix do), anything else is used as UTF-8 bytes; None for a
    `whsec_` secret that does not decode to at least one byte."""
    if not secret.startswith("whsec_"):
        return secret.encode()
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        return None
    return key or None


def _check_trusted_proxies(values: tuple[str, ...]) -> None:
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


def _check_allowed_hosts(values: tuple[str, ...]) -> None:
    for value in values:
        if not HOST_PATTERN.fullmatch(value):
            raise ConfigError(
                f"LITETASK_ALLOWED_HOSTS: {value!r} is not a host name, *.domain or *"
            )


def _forever_if_zero(seconds: float | None) -> float | None:
    return None if seconds == 0 else seconds


def _seconds_in_bounds(value: float | None) -> bool:
    """None (unset), or a finite positive number of seconds within litetask's bounds."""
    return value is None or 0 < value <= MAX_SECONDS


def _shown(name: str, value: Any) -> Any:
    if name in SECRET_FIELDS:
        return mask_secret(value)
    if name in URL_FIELDS and value is not None:
        return mask_url(value)
    return value


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _parse(name: str, type_name: str, raw: str) -> Any:
    if name == "webhooks":
        return parse_webhooks(raw)
    return parse_value(ENV_PREFIX + name.upper(), type_name, raw)
