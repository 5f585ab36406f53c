"""LITETASK_* strings into typed values, and secrets into something safe to show.

Every refusal is a ConfigError of one line that names the variable and says what it accepts:
`litetask` prints it and exits 2, where a traceback would leave the operator guessing.
"""

from __future__ import annotations

import math
import re
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

BOOLEANS = {"1": True, "true": True, "yes": True, "on": True}
BOOLEANS.update({"0": False, "false": False, "no": False, "off": False})
LOG_LEVELS = ("debug", "info", "warning", "error")
POSTGRES_DRIVER = "postgresql+asyncpg"
DATABASE_URL_FORMS = (
    "sqlite+aiosqlite:///relative/path.db or sqlite+aiosqlite:////absolute/path.db "
    "(or postgresql+asyncpg://user:password@host:port/database)"
)
MASK = "***"
# user:password@ in a URL (or what looks like one in a string that does not parse).
URL_PASSWORD = re.compile(r"(?P<user>//[^/@:]*):[^/@]*@")


class ConfigError(ValueError):
    """A LITETASK_* setting has a value litetask cannot use."""


def parse_value(env_name: str, type_name: str, raw: str) -> Any:
    """`raw` as the type a Settings field is annotated with (its name, e.g. "float | None")."""
    if type_name.startswith("tuple"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if type_name.startswith("int"):
        return _integer(env_name, raw)
    if type_name.startswith("float"):
        return _number(env_name, raw)
    if type_name == "bool":
        return _boolean(env_name, raw)
    return raw


def _integer(env_name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{env_name}={raw!r} is not a whole number (e.g. 10)") from None


def _number(env_name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"{env_name}={raw!r} is not a finite number (e.g. 2.5)")
    return value


def _boolean(env_name: str, raw: str) -> bool:
    try:
        return BOOLEANS[raw.strip().lower()]
    except KeyError:
        raise ConfigError(f"{env_name}={raw!r} is not one of {', '.join(BOOLEANS)}") from None


def check_log_level(level: str) -> None:
    if level.lower() not in LOG_LEVELS:
        raise ConfigError(f"LITETASK_LOG_LEVEL={level!r} is not one of {', '.join(LOG_LEVELS)}")


def check_database_url(url: str) -> None:
    """A SQLite file through the aiosqlite driver, or a PostgreSQL database through asyncpg:
    what the engines are built for."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        parsed = None
    usable = (
        parsed is not None
        and parsed.drivername in ("sqlite+aiosqlite", POSTGRES_DRIVER)
        and parsed.database not in (None, "", ":memory:")
    )
    if not usable:
        raise ConfigError(
            f"LITETASK_DATABASE_URL={mask_url(url)!r} is not a database litetask runs on; "
            f"use {DATABASE_URL_FORMS}"
        )


def mask_url(url: str) -> str:
    """`url` with its password (if any) replaced by ***, safe for logs and messages."""
    return URL_PASSWORD.sub(rf"\g<user>:{MASK}@", url)


def mask_secret(value: str | None) -> str | None:
    """None stays None (unset is worth knowing); any secret shows as ***."""
    return None if value is None else MASK
