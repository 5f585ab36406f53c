"""Webhooks as an attacker sees them: only configured endpoints exist, answers tell nothing,
captured GitHub deliveries cannot be replayed, secrets are checked at start, and the
Standard Webhooks reference library agrees with us both ways."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from app.config import ConfigError, Settings
from app.webhook_config import parse_webhooks
from tests.conftest import ClientFactory
from tests.web.helpers import assert_problem, task_count, wait_done
from tests.web.webhook_signing import BODY, KEY, SECRET, github_headers, standard_headers

MODULES = ("app.demo", "tests.web.webhook_tasks")
ENDPOINTS = {
    "hook.github": {"scheme": "github", "secret": "gh-secret", "headers": ["X-GitHub-Event"]},
    "demo.add": {"scheme": "standard", "secret": SECRET},
}
TOKEN = "webhook-test-token-0123456789abcdefgh"


def hook_settings(**overrides: Any) -> dict[str, Any]:
    return {
        "task_modules": MODULES,
        "webhooks": parse_webhooks(json.dumps(ENDPOINTS)),
        "webhook_secret": SECRET,
        "webhook_types": ("demo.echo",),
        **overrides,
    }


@pytest.fixture
async def hooks(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(**hook_settings()) as client:
        yield client


async def test_unconfigured_endpoints_do_not_exist(hooks: httpx.AsyncClient) -> None:
    """A registered task type that is not a webhook answers exactly as a name nobody
    registered, signed with the default secret or not: nothing to enumerate."""
    answers = []
    for task_type in ("demo.sleep", "demo.fail", "no.such.type"):
        for headers in (standard_headers(BODY), {}):
            response = await hooks.post(f"/webhooks/{task_type}", content=BODY, headers=headers)
            assert_problem(response, 404)
            answers.append(response.content)
    assert len(set(answers)) == 1
    assert b"demo." not in answers[0] and b"known" not in answers[0]
    assert await task_count(hooks) == 0


async def test_answers_say_only_the_id_and_where(hooks: httpx.AsyncClient) -> None:
    headers = standard_headers(BODY, msg_id="msg_shape")
    for status in (202, 200):
        response = await hooks.post("/webhooks/demo.echo", content=BODY, headers=headers)
        assert response.status_code == status, response.text
        answer = response.json()
        assert set(answer) == {"task_id", "created", "url"}
        assert answer["created"] is (status == 202)
        assert answer["url"] == response.headers["location"] == f"/tasks/{answer['task_id']}"


async def test_arguments_that_do_not_fit_say_nothing_of_the_function(
    hooks: httpx.AsyncClient,
) -> None:
    """demo.add(a, b) cannot take payload=...: the sender learns that much, not the
    signature, the task type's name or what else is registered."""
    response = await hooks.post("/webhooks/demo.add", content=BODY, headers=standard_headers(BODY))
    body = assert_problem(response, 422)
    text = response.text
    for secret in ("demo.add", "float", "(a", "payload", "known_task_types", "argument"):
        assert secret not in text, text
    assert set(body) == {"type", "title", "status", "detail"}
    assert await task_count(hooks) == 0


PUSH = json.dumps({"ref": "main", "after": "4f0c"}).encode()


async def test_a_replayed_github_delivery_under_a_fresh_id_creates_nothing(
    hooks: httpx.AsyncClient,
) -> None:
    first = await hooks.post("/webhooks/hook.github", content=PUSH, headers=github_headers(PUSH))
    assert first.status_code == 202, first.text
    for delivery in ("gh-replayed-1", "gh-replayed-2"):
        replay = github_headers(PUSH, delivery=delivery)
        again = await hooks.post("/webhooks/hook.github", content=PUSH, headers=replay)
        assert again.status_code == 200, again.text
        assert again.json() == {**first.json(), "created": False}
    other = json.dumps({"ref": "main", "after": "77aa"}).encode()
    new = await hooks.post(
        "/webhooks/hook.github", content=other, headers=github_headers(other, delivery="gh-2")
    )
    assert new.status_code == 202
    assert await task_count(hooks) == 2
    done = await wait_done(hooks, first.json()["task_id"])
    assert done["result"] == "push:main"


async def test_concurrent_replays_create_one_task(hooks: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(
            hooks.post(
                "/webhooks/hook.github",
                content=PUSH,
                headers=github_headers(PUSH, delivery=f"d{n}"),
            )
            for n in range(8)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] * 7 + [202]
    assert await task_count(hooks) == 1


async def test_the_replay_window_is_per_endpoint(make_client: ClientFactory) -> None:
    """The same body delivered to another GitHub endpoint is another delivery: a task each."""
    endpoints = {**ENDPOINTS, "hook.record": {"scheme": "github", "secret": "gh-secret"}}
    settings = hook_settings(webhooks=parse_webhooks(json.dumps(endpoints)))
    async with make_client(**settings) as client:
        created = []
        for n, endpoint in enumerate(("hook.github", "hook.record", "hook.github")):
            headers = github_headers(PUSH, delivery=f"gh-per-endpoint-{n}")
            response = await client.post(f"/webhooks/{endpoint}", content=PUSH, headers=headers)
            assert response.status_code in (200, 202), response.text
            created.append(response.json()["created"])
        assert created == [True, True, False]
        assert await task_count(client) == 2


async def test_after_the_replay_window_the_same_body_is_new_again(
    make_client: ClientFactory,
) -> None:
    async with make_client(**hook_settings(webhook_replay_window=2)) as client:
        first = await client.post(
            "/webhooks/hook.github", content=PUSH, headers=github_headers(PUSH)
        )
        assert first.status_code == 202
        replay = github_headers(PUSH, delivery="gh-again")
        assert (
            await client.post("/webhooks/hook.github", content=PUSH, headers=replay)
        ).status_code == 200
        async with asyncio.timeout(20):
            n = 0
            while True:
                n += 1
                replay = github_headers(PUSH, delivery=f"gh-later-{n}")
                later = await client.post("/webhooks/hook.github", content=PUSH, headers=replay)
                if later.status_code == 202:
                    break
                assert later.status_code == 200
                await asyncio.sleep(0.25)
        assert await task_count(client) == 2
        # The original delivery id still deduplicates, window or not.
        original = await client.post(
            "/webhooks/hook.github", content=PUSH, headers=github_headers(PUSH)
        )
        assert original.json()["task_id"] == first.json()["task_id"]


BAD_SECRETS = ["whsec_not base64!", "whsec_QUJD*", "whsec_", "whsec_A"]


@pytest.mark.parametrize("secret", BAD_SECRETS)
def test_a_malformed_whsec_secret_is_a_config_error(secret: str) -> None:
    per_endpoint = json.dumps({"demo.echo": {"scheme": "standard", "secret": secret}})
    with pytest.raises(ConfigError, match=r"LITETASK_WEBHOOKS\['demo.echo'\]"):
        Settings.from_env({"LITETASK_WEBHOOKS": per_endpoint})
    with pytest.raises(ConfigError, match="LITETASK_WEBHOOK_SECRET"):
        Settings.from_env({"LITETASK_WEBHOOK_SECRET": secret, "LITETASK_WEBHOOK_TYPES": "a.b"})


def test_stripe_secrets_are_not_decoded() -> None:
    """Stripe's whsec_... secrets are used as they are, so any text is fine there."""
    endpoints = json.dumps({"s": {"scheme": "stripe", "secret": "whsec_not base64!"}})
    assert Settings.from_env({"LITETASK_WEBHOOKS": endpoints}).webhooks[0].scheme == "stripe"


@pytest.mark.parametrize(
    "environ",
    [
        {"LITETASK_WEBHOOKS": json.dumps({"hook.unsigned": {"scheme": "none"}})},
        {"LITETASK_WEBHOOK_SCHEME": "none", "LITETASK_WEBHOOK_TYPES": "demo.echo"},
    ],
)
def test_unsigned_endpoints_are_refused_off_loopback(environ: dict[str, str]) -> None:
    off_loopback = {"LITETASK_HOST": "0.0.0.0", "LITETASK_API_TOKEN": TOKEN}
    with pytest.raises(ConfigError, match=r"none.*loopback"):
        Settings.from_env({**environ, **off_loopback})
    assert Settings.from_env({**environ, "LITETASK_HOST": "127.0.0.1"}).host == "127.0.0.1"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"LITETASK_WEBHOOK_SECRET": SECRET}, "LITETASK_WEBHOOK_TYPES"),
        ({"LITETASK_WEBHOOK_TYPES": "demo.echo"}, "LITETASK_WEBHOOK_SECRET"),
    ],
)
def test_the_default_secret_and_its_types_go_together(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(environ)


# 32 random-looking bytes, written as senders such as Svix write them: base64, no padding.
INTEROP_KEY = bytes(range(7, 39))
UNPADDED = "whsec_" + base64.b64encode(INTEROP_KEY).decode().rstrip("=")


async def test_deliveries_signed_by_standardwebhooks_are_accepted(
    make_client: ClientFactory,
) -> None:
    endpoints = {"demo.echo": {"scheme": "standard", "secret": UNPADDED}}
    settings = {"webhooks": parse_webhooks(json.dumps(endpoints))}
    async with make_client(**settings) as client:
        stamp = datetime.now(tz=UTC)
        signature = Webhook(UNPADDED).sign("msg_interop", stamp, BODY.decode())
        headers = {
            "webhook-id": "msg_interop",
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": signature,
            "content-type": "application/json",
        }
        response = await client.post("/webhooks/demo.echo", content=BODY, headers=headers)
        assert response.status_code == 202, response.text


def test_our_signatures_verify_with_standardwebhooks() -> None:
    assert Webhook(SECRET).verify(BODY, standard_headers(BODY)) == json.loads(BODY)
    headers = standard_headers(BODY, key=INTEROP_KEY)
    assert Webhook(UNPADDED).verify(BODY, headers) == json.loads(BODY)
    assert KEY != INTEROP_KEY
