"""Event streams are capped, in all and per client address (503 problem+json with
Retry-After beyond), a closed stream frees its slot, and a stream ends itself cleanly before
Hypercorn's read timeout would cut its silent client off. Clients on 127.0.0.2 and 127.0.0.3
are other addresses to the server: the whole of 127.0.0.0/8 is loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest

from tests.conftest import ServerProcess, free_loopback_port

Start = Callable[..., ServerProcess]


def client_from(address: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(transport=transport, timeout=10)


@asynccontextmanager
async def stream(client: httpx.AsyncClient, url: str) -> AsyncIterator[httpx.Response]:
    """A stream held open while the block runs (its slot is taken before the headers are
    sent), or the refusal, read whole."""
    async with client.stream("GET", url + "/events") as response:
        if response.status_code != 200:
            await response.aread()
        yield response


def assert_full(response: httpx.Response) -> None:
    assert response.status_code == 503, response.status_code
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert "LITETASK_SSE_MAX_STREAMS" in response.json()["detail"]


async def test_streams_are_capped_per_client_and_in_all(start_server: Start) -> None:
    server = start_server(
        free_loopback_port(),
        LITETASK_SSE_MAX_STREAMS="3",
        LITETASK_SSE_MAX_STREAMS_PER_CLIENT="2",
    )
    clients = {a: client_from(a) for a in ("127.0.0.1", "127.0.0.2", "127.0.0.3")}
    async with AsyncExitStack() as stack:
        for client in clients.values():
            await stack.enter_async_context(client)
        first = [await stack.enter_async_context(stream(clients["127.0.0.1"], server.url))]
        first.append(await stack.enter_async_context(stream(clients["127.0.0.1"], server.url)))
        assert [r.status_code for r in first] == [200, 200]
        async with stream(clients["127.0.0.1"], server.url) as third:
            assert_full(third)  # this address has its two
        async with stream(clients["127.0.0.2"], server.url) as other:
            assert other.status_code == 200  # another address: three in all now
            async with stream(clients["127.0.0.3"], server.url) as over:
                assert_full(over)  # three in all
        # The stream from 127.0.0.2 is closed: its slot is free again.
        await wait_until_open(clients["127.0.0.3"], server.url)
        assert (await clients["127.0.0.1"].get(server.url + "/health")).status_code == 200


async def wait_until_open(client: httpx.AsyncClient, url: str, timeout: float = 10) -> None:
    """The server notices a closed stream a moment after the client has gone."""
    deadline = time.monotonic() + timeout
    while True:
        async with stream(client, url) as response:
            if response.status_code == 200:
                return
            assert_full(response)
        assert time.monotonic() < deadline, "the closed stream's slot was never freed"
        await asyncio.sleep(0.05)


async def test_a_stream_ends_itself_before_the_read_timeout(start_server: Start) -> None:
    """LITETASK_READ_TIMEOUT=4: Hypercorn would cut the silent client after 4 s; the stream
    ends first, cleanly (a complete chunked body), and the client resumes without a gap."""
    server = start_server(free_loopback_port(), LITETASK_READ_TIMEOUT="4")
    async with httpx.AsyncClient(timeout=20) as client:
        started = time.monotonic()
        async with client.stream("GET", server.url + "/events") as response:
            assert response.status_code == 200
            body = b"".join([chunk async for chunk in response.aiter_bytes()])
        took = time.monotonic() - started
        assert body.startswith(b"retry: ")
        assert took < 4, took
        with pytest.raises(httpx.ReadTimeout):  # a live stream again, after the reconnect
            await client.get(server.url + "/events", timeout=httpx.Timeout(10, read=0.5))
