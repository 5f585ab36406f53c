"""Webhook signature schemes: Standard Webhooks, GitHub and Stripe.

Each check works on the raw body, compares in constant time, and returns the delivery id
(None when the scheme carries none in its headers). Bad or missing signatures raise 401,
malformed headers 400; nothing here can fail with anything else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

from app.web.errors import Problem
from app.webhook_config import WebhookEndpoint, standard_key

MAX_DELIVERY_ID = 255


def bad_signature(detail: str) -> Problem:
    return Problem(401, "bad-signature", detail)


def malformed(detail: str) -> Problem:
    return Problem(400, "malformed-webhook", detail)


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise malformed(f"the {name} header is missing")
    return value


def _delivery_id(value: str) -> str:
    if not 0 < len(value) <= MAX_DELIVERY_ID:
        raise malformed(f"a delivery id must be 1 to {MAX_DELIVERY_ID} characters")
    return value


def _timestamp(text: str, tolerance: int) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 12):
        raise malformed("the webhook timestamp must be whole seconds since the epoch")
    stamp = int(text)
    if abs(time.time() - stamp) > tolerance:
        raise bad_signature(f"the webhook timestamp is more than {tolerance} s away from now")
    return stamp


def _any_match(expected: list[bytes], given: list[bytes]) -> bool:
    """Constant-time per pair; every pair is compared (no early exit on a match)."""
    matches = [hmac.compare_digest(e, g) for e in expected for g in given]
    return any(matches)


def verify_standard(
    endpoint: WebhookEndpoint, headers: Mapping[str, str], body: bytes, tolerance: int
) -> str:
    """webhook-id, webhook-timestamp and webhook-signature `v1,<base64>` (space-separated
    for rotation) over `id.timestamp.body`."""
    header = headers.get("webhook-signature")
    if not header:
        raise bad_signature("the webhook-signature header is missing")
    delivery_id = _delivery_id(_required(headers, "webhook-id"))
    stamp = _timestamp(_required(headers, "webhook-timestamp"), tolerance)
    given = _standard_signatures(header)
    signed = f"{delivery_id}.{stamp}.".encode() + body
    expected = [base64.b64encode(_hmac(_key(s), signed)) for s in endpoint.secrets]
    if not _any_match(expected, given):
        raise bad_signature("no webhook-signature matches the body")
    return delivery_id


def _key(secret: str) -> bytes:
    key = standard_key(secret)
    assert key is not None, "Settings.validated() refuses secrets that do not decode"
    return key


def _standard_signatures(header: str) -> list[bytes]:
    found: list[bytes] = []
    for entry in header.split():
        version, comma, signature = entry.partition(",")
        if not comma or not version or not signature:
            raise malformed("webhook-signature entries look like v1,<base64>")
        if version == "v1":
            found.append(signature.encode("latin-1"))
    if not found:
        raise bad_signature("webhook-signature has no v1 signature")
    return found


def verify_github(
    endpoint: WebhookEndpoint, headers: Mapping[str, str], body: bytes, _tolerance: int
) -> str:
    """X-Hub-Signature-256: `sha256=<hex HMAC of the body>`; X-GitHub-Delivery is the id."""
    header = headers.get("x-hub-signature-256")
    if not header:
        raise bad_signature("the X-Hub-Signature-256 header is missing")
    delivery_id = _delivery_id(_required(headers, "x-github-delivery"))
    algorithm, _, signature = header.partition("=")
    if algorithm != "sha256" or not _is_hex(signature):
        raise malformed("X-Hub-Signature-256 looks like sha256=<hex>")
    expected = [_hmac(s.encode(), body).hex().encode() for s in endpoint.secrets]
    if not _any_match(expected, [signature.lower().encode()]):
        raise bad_signature("X-Hub-Signature-256 does not match the body")
    return delivery_id


def verify_stripe(
    endpoint: WebhookEndpoint, headers: Mapping[str, str], body: bytes, tolerance: int
) -> None:
    """Stripe-Signature: `t=<seconds>,v1=<hex>[,v1=...]` over `t.body`. Stripe's delivery
    id is the event id in the body, read after the check."""
    header = headers.get("stripe-signature")
    if not header:
        raise bad_signature("the Stripe-Signature header is missing")
    stamps, given = _stripe_parts(header)
    if len(stamps) != 1:
        raise malformed("Stripe-Signature needs exactly one t=<seconds>")
    stamp = _timestamp(stamps[0], tolerance)
    signed = f"{stamp}.".encode() + body
    expected = [_hmac(s.encode(), signed).hex().encode() for s in endpoint.secrets]
    if not given or not _any_match(expected, given):
        raise bad_signature("no Stripe-Signature v1 signature matches the body")


def _stripe_parts(header: str) -> tuple[list[str], list[bytes]]:
    stamps: list[str] = []
    signatures: list[bytes] = []
    for item in header.split(","):
        key, equals, value = item.strip().partition("=")
        if not equals:
            raise malformed("Stripe-Signature items look like key=value")
        if key == "t":
            stamps.append(value)
        elif key == "v1" and _is_hex(value):
            signatures.append(value.lower().encode())
    return stamps, signatures


def _is_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)


def unsigned_delivery_id(headers: Mapping[str, str]) -> str | None:
    """For scheme `none`: a delivery id from the usual headers, if the sender gave one."""
    for name in ("webhook-id", "x-github-delivery"):
        if headers.get(name):
            return _delivery_id(headers[name])
    return None
