"""Settings: one frozen dataclass read from LITETASK_* environment variables.

Every setting has a default that works on a fresh machine; docs/configuration.md lists them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./litetask.db"
ENV_PREFIX = "LITETASK_"


class ConfigError(ValueError):
    """A LITETASK_* setting has a value litetask cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    task_modules: tuple[str, ...] = ("app.demo",)
    max_workers: int = 10
    task_timeout: float | None = None
    max_attempts: int = 1
    retry_backoff: float = 1.0
    max_interruptions: int = 3
    stop_timeout: float = 10.0
    host: str = "127.0.0.1"
    port: int = 8000
    api_token: str | None = None
    webhook_secret: str | None = None
    max_body_bytes: int = 1024 * 1024
    log_level: str = "info"

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
        if self.max_workers < 1:
            raise ConfigError("LITETASK_MAX_WORKERS must be at least 1")
        if self.max_attempts < 1:
            raise ConfigError("LITETASK_MAX_ATTEMPTS must be at least 1")
        if self.max_body_bytes < 1024:
            raise ConfigError("LITETASK_MAX_BODY_BYTES must be at least 1024")
        return self


def _parse(name: str, type_name: str, raw: str) -> Any:
    env_name = ENV_PREFIX + name.upper()
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
