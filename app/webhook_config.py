"""Webhook endpoints as configured: LITETASK_WEBHOOKS (per endpoint) and the default secret
for the task types in LITETASK_WEBHOOK_TYPES, checked at start (docs/webhooks.md)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from app.env_values import ConfigError

WEBHOOK_SCHEMES = ("standard", "github", "stripe", "none")


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


def check_endpoint(endpoint: WebhookEndpoint, on_loopback: bool) -> None:
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


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)
