"""The result cache over HTTP: POST /tasks honours use_cache/cache_ttl; DELETE /cache."""

from __future__ import annotations

import httpx

from tests.conftest import ClientFactory
from tests.web.helpers import submit, wait_done


async def cached_echo(
    client: httpx.AsyncClient, value: int, **options: object
) -> dict[str, object]:
    task = await submit(client, "demo.echo", args=[value], use_cache=True, **options)
    return await wait_done(client, str(task["id"]))


async def test_identical_cached_submissions_are_answered_from_the_cache(
    client: httpx.AsyncClient,
) -> None:
    first = await cached_echo(client, 1)
    second = await cached_echo(client, 1)
    assert (first["result"], first["from_cache"]) == ({"args": [1], "kwargs": {}}, False)
    assert (second["result"], second["from_cache"]) == (first["result"], True)
    plain = await wait_done(client, str((await submit(client, "demo.echo", args=[1]))["id"]))
    assert plain["from_cache"] is False


async def test_delete_cache_forgets_every_result(client: httpx.AsyncClient) -> None:
    await cached_echo(client, 2)
    response = await client.delete("/cache")
    assert response.status_code == 200
    assert response.json() == {"cleared": True, "backend": "sqlite"}
    assert (await cached_echo(client, 2))["from_cache"] is False


async def test_delete_cache_needs_the_token_and_says_when_there_is_no_cache(
    make_client: ClientFactory,
) -> None:
    token = "secret" * 6
    async with make_client(api_token=token, cache_backend="none") as client:
        assert (await client.delete("/cache")).status_code == 401
        response = await client.delete("/cache", headers={"Authorization": f"Bearer {token}"})
        assert response.json() == {"cleared": False, "backend": "none"}


async def test_bad_cache_options_are_422(client: httpx.AsyncClient) -> None:
    for body in ({"use_cache": "yes"}, {"cache_ttl": 0}, {"cache_ttl": "soon"}):
        response = await client.post("/tasks", json={"task_type": "demo.echo", "args": [1], **body})
        assert response.status_code == 422, body
