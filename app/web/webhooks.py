"""POST /webhooks/{task_type}: a signed delivery becomes a task, exactly once per delivery.

The task is called with `payload=<the JSON body>` and, when the endpoint lists headers,
`headers={name: value}`. The delivery row commits in the same transaction as the task row,
so a repeated delivery id answers 200 with the original task and creates nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.config import Settings, WebhookEndpoint
from app.web.body import parse_json, read_body
from app.web.encoding import ApiJSONResponse, task_json, task_url
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
from app.web.tasks import accepted_info
from app.worker.options import TaskOptions
from app.worker.records import WebhookDelivery


async def receive_webhook(request: Request) -> Response:
    """202 with the new task's id and URL; 200 with the original for a repeated delivery."""
    settings = settings_of(request)
    task_type = request.path_params["task_type"]
    endpoint = settings.webhook_endpoint(task_type)
    raw = await read_body(request, settings.max_body_bytes)
    delivery_id = _verify(endpoint, request.headers, raw, settings)
    payload = parse_json(raw)
    if endpoint.scheme == "stripe":
        delivery_id = _stripe_event_id(payload)
    worker = worker_of(request)
    kwargs = _task_kwargs(endpoint, request.headers, payload)
    accepted = await worker.submit(task_type, [], kwargs, _options(task_type, delivery_id))
    info = await accepted_info(worker, accepted)
    url = task_url(info.id)
    return ApiJSONResponse(
        {"task_id": info.id, "url": url, "created": accepted.created, "task": task_json(info)},
        202 if accepted.created else 200,
        headers={"Location": url},
    )


def _verify(
    endpoint: WebhookEndpoint, headers: Mapping[str, str], raw: bytes, settings: Settings
) -> str | None:
    if endpoint.scheme == "none":
        return unsigned_delivery_id(headers)
    if not endpoint.secrets:
        raise Problem(
            403,
            "webhooks-not-configured",
            f"webhook endpoint {endpoint.task_type!r} has no secret; set "
            "LITETASK_WEBHOOK_SECRET or configure it in LITETASK_WEBHOOKS",
        )
    tolerance = settings.webhook_tolerance
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


def _task_kwargs(
    endpoint: WebhookEndpoint, headers: Mapping[str, str], payload: Any
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"payload": payload}
    if endpoint.headers:
        kwargs["headers"] = {name: headers[name] for name in endpoint.headers if name in headers}
    return kwargs


def _options(task_type: str, delivery_id: str | None) -> TaskOptions:
    delivery = WebhookDelivery(task_type, delivery_id) if delivery_id is not None else None
    return TaskOptions(
        metadata={"webhook": {"endpoint": task_type, "delivery_id": delivery_id}},
        webhook_delivery=delivery,
    )


routes: list[BaseRoute] = [Route("/webhooks/{task_type}", receive_webhook, methods=["POST"])]
