"""Webhooks: Standard Webhooks, GitHub and Stripe signatures, and exactly-once acceptance."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from app.webhook_config import parse_webhooks
from tests.conftest import ClientFactory
from tests.web.helpers import assert_problem, task_count, wait_done
from tests.web.webhook_signing import BODY, SECRET, github_headers, standard_headers, stripe_headers

MODULES = ("app.demo", "tests.web.webhook_tasks")
ENDPOINTS = {
    "hook.github": {"scheme": "github", "secret": "gh-secret", "headers": ["X-GitHub-Event"]},
    "hook.record": {"scheme": "stripe", "secret": ["old", "stripe-secret"]},
    "hook.unsigned": {"scheme": "none"},
}


@pytest.fixture
async def hooks(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    webhooks = parse_webhooks(json.dumps(ENDPOINTS))
    settings = {
        "webhook_secret": SECRET,
        "webhook_types": ("demo.echo",),
        "webhooks": webhooks,
        "task_modules": MODULES,
    }
    async with make_client(**settings) as client:
        yield client


async def test_standard_delivery_becomes_a_task(hooks: httpx.AsyncClient) -> None:
    response = await hooks.post("/webhooks/demo.echo", content=BODY, headers=standard_headers(BODY))
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["url"] == f"/tasks/{accepted['task_id']}" == response.headers["location"]
    done = await wait_done(hooks, accepted["task_id"])
    assert done["result"] == {"args": [], "kwargs": {"payload": json.loads(BODY)}}
    assert done["metadata"]["webhook"] == {"endpoint": "demo.echo", "delivery_id": "msg_1"}


async def test_repeated_delivery_returns_the_original(hooks: httpx.AsyncClient) -> None:
    headers = standard_headers(BODY, msg_id="msg_dup")
    first = await hooks.post("/webhooks/demo.echo", content=BODY, headers=headers)
    again = await hooks.post("/webhooks/demo.echo", content=BODY, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["task_id"] == first.json()["task_id"]
    assert again.json()["created"] is False
    assert await task_count(hooks) == 1


async def test_concurrent_duplicate_deliveries_create_one_task(hooks: httpx.AsyncClient) -> None:
    headers = standard_headers(BODY, msg_id="msg_race")
    responses = await asyncio.gather(
        *(hooks.post("/webhooks/demo.echo", content=BODY, headers=headers) for _ in range(10))
    )
    assert sorted(r.status_code for r in responses) == [200] * 9 + [202]
    assert await task_count(hooks) == 1


async def test_rotation_accepts_any_listed_signature(hooks: httpx.AsyncClient) -> None:
    headers = standard_headers(BODY, msg_id="msg_rot")
    old = standard_headers(BODY, msg_id="msg_rot", key=b"old key")["webhook-signature"]
    headers["webhook-signature"] = f"{old} v2,ignored {headers['webhook-signature']}"
    response = await hooks.post("/webhooks/demo.echo", content=BODY, headers=headers)
    assert response.status_code == 202


BAD_STANDARD: list[tuple[str, dict[str, str | None], int]] = [
    ("no signature", {"webhook-signature": None}, 401),
    ("wrong key", {"webhook-signature": "v1,AAAA"}, 401),
    ("only other versions", {"webhook-signature": "v2,abc"}, 401),
    ("entry without comma", {"webhook-signature": "garbage"}, 400),
    ("no id", {"webhook-id": None}, 400),
    ("no timestamp", {"webhook-timestamp": None}, 400),
    ("timestamp not a number", {"webhook-timestamp": "soon"}, 400),
    ("old timestamp", {"webhook-timestamp": str(int(time.time()) - 3600)}, 401),
    ("future timestamp", {"webhook-timestamp": str(int(time.time()) + 3600)}, 401),
    ("id too long", {"webhook-id": "i" * 300}, 400),
]


@pytest.mark.parametrize(
    ("case", "change", "status"), BAD_STANDARD, ids=[c[0] for c in BAD_STANDARD]
)
async def test_bad_standard_deliveries(
    hooks: httpx.AsyncClient, case: str, change: dict[str, str | None], status: int
) -> None:
    headers: dict[str, str] = standard_headers(BODY)
    for name, value in change.items():
        headers.pop(name, None)
        if value is not None:
            headers[name] = value
    assert_problem(await hooks.post("/webhooks/demo.echo", content=BODY, headers=headers), status)
    assert await task_count(hooks) == 0


async def test_tampered_body_is_refused(hooks: httpx.AsyncClient) -> None:
    headers = standard_headers(BODY)
    response = await hooks.post("/webhooks/demo.echo", content=BODY + b" ", headers=headers)
    assert_problem(response, 401)


async def test_signed_but_not_json_is_400(hooks: httpx.AsyncClient) -> None:
    body = b"not json"
    response = await hooks.post("/webhooks/demo.echo", content=body, headers=standard_headers(body))
    assert_problem(response, 400)


async def test_signed_for_an_unknown_task_type_is_404(hooks: httpx.AsyncClient) -> None:
    response = await hooks.post("/webhooks/nope", content=BODY, headers=standard_headers(BODY))
    assert_problem(response, 404)


async def test_github_delivery_passes_chosen_headers(hooks: httpx.AsyncClient) -> None:
    body = json.dumps({"ref": "main"}).encode()
    response = await hooks.post("/webhooks/hook.github", content=body, headers=github_headers(body))
    assert response.status_code == 202, response.text
    done = await wait_done(hooks, response.json()["task_id"])
    assert done["kwargs"]["headers"] == {"x-github-event": "push"}
    assert done["result"] == "push:main"
    bad = github_headers(body, secret="wrong")
    assert_problem(await hooks.post("/webhooks/hook.github", content=body, headers=bad), 401)
    malformed = {**github_headers(body), "x-hub-signature-256": "md5=abc"}
    assert_problem(await hooks.post("/webhooks/hook.github", content=body, headers=malformed), 400)


async def test_stripe_delivery_uses_the_event_id(hooks: httpx.AsyncClient) -> None:
    body = json.dumps({"id": "evt_1", "type": "charge.succeeded"}).encode()
    first = await hooks.post("/webhooks/hook.record", content=body, headers=stripe_headers(body))
    again = await hooks.post("/webhooks/hook.record", content=body, headers=stripe_headers(body))
    assert (first.status_code, again.status_code) == (202, 200)
    task = (await hooks.get(first.json()["url"])).json()
    assert task["metadata"]["webhook"]["delivery_id"] == "evt_1"
    old = stripe_headers(body, stamp=int(time.time()) - 3600)
    assert_problem(await hooks.post("/webhooks/hook.record", content=body, headers=old), 401)
    no_t = {"stripe-signature": "v1=" + "a" * 64}
    assert_problem(await hooks.post("/webhooks/hook.record", content=body, headers=no_t), 400)
    no_id = json.dumps({"type": "x"}).encode()
    assert_problem(
        await hooks.post("/webhooks/hook.record", content=no_id, headers=stripe_headers(no_id)), 400
    )


async def test_unsigned_scheme_needs_no_signature(hooks: httpx.AsyncClient) -> None:
    body = json.dumps({"a": 1}).encode()
    response = await hooks.post("/webhooks/hook.unsigned", content=body)
    assert response.status_code == 202
    task = (await hooks.get(response.json()["url"])).json()
    assert task["kwargs"] == {"payload": {"a": 1}}


async def test_without_configuration_there_are_no_webhooks(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/webhooks/demo.echo", content=BODY, headers=standard_headers(BODY)
    )
    assert_problem(response, 404)
    assert await task_count(client) == 0
