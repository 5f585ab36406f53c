"""Who may reach the service: the API token's rules and the loopback test.

Off loopback the service needs LITETASK_API_TOKEN (at least MIN_TOKEN_LENGTH characters,
from `litetask token`), unless LITETASK_INSECURE_NO_AUTH=1 says on purpose that it runs open
on a private network; that opt-out is logged as a warning at every start.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets

logger = logging.getLogger(__name__)
MIN_TOKEN_LENGTH = 32
TOKEN_BYTES = 32  # 43 URL-safe characters
HOW_TO_SET = "set LITETASK_API_TOKEN=$(litetask token)"


def new_token() -> str:
    """A fresh random API token (256 bits, URL-safe base64)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1; any other name or address (0.0.0.0, ::, a
    hostname that may resolve anywhere) counts as reachable from outside."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def exposure_problem(token: str | None, host: str, insecure_no_auth: bool) -> str | None:
    """Why serving on `host` with these settings would be open to others, as one line; None
    when it is not (a token, a loopback host, or the explicit opt-out)."""
    if token is not None or is_loopback(host) or insecure_no_auth:
        return None
    return (
        f"LITETASK_API_TOKEN is not set and {host} is not a loopback address: "
        f"{HOW_TO_SET} (or LITETASK_INSECURE_NO_AUTH=1 to run open on a private network)"
    )


def token_problem(token: str | None) -> str | None:
    """Why `token` is not a usable API token, as one line; None when it is (or is unset)."""
    if token is None:
        return None
    if not token:
        return f"LITETASK_API_TOKEN is set but empty: {HOW_TO_SET}, or unset it on loopback"
    if len(token) < MIN_TOKEN_LENGTH:
        return (
            f"LITETASK_API_TOKEN has {len(token)} characters, fewer than {MIN_TOKEN_LENGTH}: "
            f"{HOW_TO_SET}"
        )
    if not token.isprintable() or any(c.isspace() for c in token):
        return f"LITETASK_API_TOKEN must not contain spaces or control characters: {HOW_TO_SET}"
    return None


def warn_if_open(token: str | None, host: str, insecure_no_auth: bool) -> None:
    """Log, at every start, that the opt-out leaves the service without authentication."""
    if token is None and insecure_no_auth:
        logger.warning(
            "LITETASK_INSECURE_NO_AUTH=1: serving on %s without authentication; anyone who "
            "can reach it can submit, read and cancel tasks",
            host,
        )
