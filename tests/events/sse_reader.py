"""A small SSE reading helper for the tests (the production client is SSEClient)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent, aconnect_sse


@dataclass(frozen=True)
class Got:
    sse_id: str
    event: str
    data: dict[str, Any]


def to_got(sse: ServerSentEvent, cursors: bool = False) -> Got | None:
    """The message, or None for one without data or a cursor (unless `cursors`)."""
    if not sse.data or (sse.event == "cursor" and not cursors):
        return None
    return Got(sse.id, sse.event, json.loads(sse.data))


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, url: str, headers: Mapping[str, str] | None = None
) -> AsyncIterator[EventSource]:
    async with aconnect_sse(client, "GET", url, headers=dict(headers or {})) as source:
        yield source


async def read_until(
    source: EventSource,
    done: Callable[[list[Got]], bool],
    timeout: float = 10,
    *,
    cursors: bool = False,
) -> list[Got]:
    """Messages with data until `done(messages)` or the stream ends; cursor messages only
    with `cursors`."""
    got: list[Got] = []

    async def read() -> None:
        async for sse in source.aiter_sse():
            item = to_got(sse, cursors)
            if item is not None:
                got.append(item)
                if done(got):
                    return

    await asyncio.wait_for(read(), timeout)
    return got


async def read_all(source: EventSource, timeout: float = 10, *, cursors: bool = False) -> list[Got]:
    return await read_until(source, lambda _: False, timeout, cursors=cursors)
