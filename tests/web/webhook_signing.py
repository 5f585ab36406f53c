"""What senders do: sign a delivery for each scheme (Standard Webhooks, GitHub, Stripe)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
BODY = json.dumps({"event": "order.paid", "amount": 12}).encode()


def standard_headers(
    body: bytes, *, msg_id: str = "msg_1", key: bytes = KEY, stamp: int | None = None
) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    signed = f"{msg_id}.{stamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": f"v1,{signature}",
        "content-type": "application/json",
    }


def github_headers(
    body: bytes, secret: str = "gh-secret", delivery: str = "gh-1"
) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "x-hub-signature-256": f"sha256={digest}",
        "x-github-delivery": delivery,
        "x-github-event": "push",
        "content-type": "application/json",
    }


def stripe_headers(
    body: bytes, secret: str = "stripe-secret", stamp: int | None = None
) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"stripe-signature": f"t={stamp},v1={digest}", "content-type": "application/json"}
