"""POST /webhooks/{task_type}: a signed delivery becomes a task, exactly once per delivery.

Only configured endpoints exist (LITETASK_WEBHOOKS, or LITETASK_WEBHOOK_TYPES with the
default secret); any other name answers the same 404, so nothing can be learnt by probing.
The task is called with `payload=<the JSON body>` and, when the endpoint lists headers,
`headers={name: value}`. The delivery rows commit in the same transaction as the task row,
so a repeated delivery id (and, for GitHub, the same body within the replay window) answers
200 with the original task's id and creates nothing. Answers carry the task's id and URL
only: the sender is not a user of the API.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.errors import TaskError
from app.web.body import parse_json, read_body
from app.web.encoding import ApiJSONResponse, task_url
from app.web.errors import Problem
from app.web.signatures import (
    MAX_DELIVERY_ID,
    malformed,
    unsigned_delivery_id,
    verify_github,
    verify_standard,
    verify_stripe,
)
from app.web.state import settings_of, worker_of
from app.webhook_config import WebhookEndpoint
from app.worker.core import AsyncTaskWorker
from app.worker.options import TaskOptions
from app.worker.records import Accepted, WebhookDelivery

logger = logging.getLogger(__name__)


def no_endpoint() -> Problem:
    """The one answer for every path that is not a configured endpoint."""
    return Problem(404, "not-found", "there is no webhook endpoint at this path")


async def receive_webhook(request: Request) -> Response:
    """202 with the new task's id and URL; 200 with the original's for a repeat."""
    settings = settings_of(request)
    endpoint = settings.webhook_endpoint(request.path_params["task_type"])
    if endpoint is None:
        raise no_endpoint()
    raw = await read_body(request, settings.max_body_bytes)
    delivery_id = _verify(endpoint, request.headers, raw, settings.webhook_tolerance)
    payload = parse_json(raw)
    if endpoint.scheme == "stripe":
        delivery_id = _stripe_event_id(payload)
    delivery = _delivery(endpoint, delivery_id, raw, settings.webhook_replay_window)
    kwargs = _task_kwargs(endpoint, request.headers, payload)
    accepted = await _submit(worker_of(request), endpoint.task_type, kwargs, delivery)
    url = task_url(accepted.task_id)
    return ApiJSONResponse(
        {"task_id": accepted.task_id, "created": accepted.created, "url": url},
        202 if accepted.created else 200,
        headers={"Location": url},
    )


def _verify(
    endpoint: WebhookEndpoint, headers: Mapping[str, str], raw: bytes, tolerance: int
) -> str | None:
    if endpoint.scheme == "none":
        return unsigned_delivery_id(headers)
    if endpoint.scheme == "github":
        return verify_github(endpoint, headers, raw, tolerance)
    if endpoint.scheme == "stripe":
        verify_stripe(endpoint, headers, raw, tolerance)
        return None
    return verify_standard(endpoint, headers, raw, tolerance)


def _stripe_event_id(payload: Any) -> str:
    event_id = payload.get("id") if isinstance(payload, dict) else None
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_DELIVERY_ID:
        raise malformed("a Stripe event needs a string id in its body")
    return event_id


def _delivery(
    endpoint: WebhookEndpoint, delivery_id: str | None, raw: bytes, window: int
) -> WebhookDelivery | None:
    """What deduplicates this delivery. GitHub signs no timestamp, so a captured delivery
    stays valid forever; its body's digest catches it under a fresh delivery id."""
    if delivery_id is None:
        return None
    if endpoint.scheme != "github":
        return WebhookDelivery(endpoint.task_type, delivery_id)
    digest = hashlib.sha256(raw).hexdigest()
    return WebhookDelivery(endpoint.task_type, delivery_id, digest, float(window))


def _task_kwargs(
    endpoint: WebhookEndpoint, headers: Mapping[str, str], payload: Any
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"payload": payload}
    if endpoint.headers:
        kwargs["headers"] = {name: headers[name] for name in endpoint.headers if name in headers}
    return kwargs


async def _submit(
    worker: AsyncTaskWorker,
    task_type: str,
    kwargs: dict[str, Any],
    delivery: WebhookDelivery | None,
) -> Accepted:
    """Submit the task; a refusal tells the sender nothing of the task type (its
    signature, other task types): the operator finds the reason in the log."""
    options = TaskOptions(
        metadata={
            "webhook": {
                "endpoint": task_type,
                "delivery_id": delivery.delivery_id if delivery else None,
            }
        },
        webhook_delivery=delivery,
    )
    try:
        return await worker.submit(task_type, [], kwargs, options)
    except TaskError as exc:
        if exc.category == "unavailable":
            raise
        logger.warning("webhook delivery to %s refused: %s", task_type, exc)
        if exc.category == "not_found":
            raise no_endpoint() from None
        raise Problem(422, "invalid-delivery", "this endpoint cannot take the delivery") from None


routes: list[BaseRoute] = [Route("/webhooks/{task_type}", receive_webhook, methods=["POST"])]
