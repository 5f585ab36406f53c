"""SSEClient: follow a litetask event stream from Python, reconnecting like a browser's
EventSource (with Last-Event-ID, so nothing is missed or repeated) but with exponential
backoff and a retry limit. It keeps the position of every message that carries one, cursors
included (they are not yielded), so a quiet filtered stream resumes where it really was.

    async with SSEClient("http://host/events", headers={"Authorization": "Bearer ..."}) as s:
        async for event in s:
            print(event.id, event.type, event.data["status"])
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError

DEFAULT_TIMEOUT = httpx.Timeout(10.0, read=45.0)  # read > 2 heartbeats: a dead link is noticed
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
CURSOR = "cursor"
MIN_SERVER_RETRY = 0.5  # a server's `retry:` hint below this is raised to it
QUICK_DEATH = 1.0  # a stream that ends sooner without delivering an event failed
MAX_RETRY_AFTER = 600.0


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One received event: `id` is the event log id (None for progress events), `type` the
    SSE event name, `data` its JSON body."""

    id: int | None
    type: str
    data: dict[str, Any] = field(default_factory=dict)


class SSEClientError(Exception):
    """The event stream could not be followed."""


class StreamRejectedError(SSEClientError):
    """The server refused the stream with a status that retrying will not change."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"event stream refused: HTTP {status_code}: {detail}")
        self.status_code = status_code


class RetriesExhaustedError(SSEClientError):
    """Reconnecting failed `max_retries` times in a row."""


class _RetryableError(Exception):
    """A connection attempt that failed in a way worth retrying, after at least
    `retry_after` seconds when the server said so."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) in seconds from now; None if absent
    or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return min(max(moment.timestamp() - time.time(), 0.0), MAX_RETRY_AFTER)


def _to_event(sse: ServerSentEvent) -> SSEEvent | None:
    """None for a message with no data (a bare `retry:` hint)."""
    if not sse.data:
        return None
    try:
        data = json.loads(sse.data)
    except json.JSONDecodeError:
        data = {"raw": sse.data}
    if not isinstance(data, dict):
        data = {"value": data}
    event_id = data.get("id")
    return SSEEvent(event_id if isinstance(event_id, int) else None, sse.event, data)


class SSEClient:
    """An async iterator of `SSEEvent`s from `url` that survives disconnects.

    When a stream ends (cleanly or not) after it delivered an event or lived at least
    QUICK_DEATH seconds, it reconnects at once: a quiet stream closed by a proxy or by the
    server's stream lifetime is routine. A failure is a connection that could not be made
    (no connection, a retryable status) or a stream that died at once; after one it waits
    `reconnect_delay` seconds (None: the server's `retry:` hint, at least MIN_SERVER_RETRY)
    doubled per consecutive failure up to `max_delay`, with jitter, and never less than a
    `Retry-After` the server sent; after `max_retries` failures in a row it raises
    RetriesExhaustedError. A 204 ends the iteration (the stream is over for good); another
    status or a body that is not an event stream raises StreamRejectedError. `aclose()`
    stops it, also from another task. `last_event_id` is the position to resume from (the
    SSE id of the last message that had one, cursors included)."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
        max_retries: int | None = 10,
        reconnect_delay: float | None = None,
        max_delay: float = 30.0,
        last_event_id: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url
        self.headers = dict(headers or {})
        self.params = dict(params or {})
        self.max_retries = max_retries
        self.reconnect_delay = reconnect_delay
        self.max_delay = max_delay
        self.last_event_id = last_event_id
        self.server_retry = 3.0
        self.connects = 0
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = client is None
        self._failures = 0
        self._delay = 0.0
        self._closed = False
        self._wake = asyncio.Event()
        self._connection: AsyncExitStack | None = None
        self._response: httpx.Response | None = None
        self._events: AsyncGenerator[ServerSentEvent, None] | None = None
        self._reading = False
        self._received = False  # whether the current connection delivered an event
        self._opened_at = 0.0  # loop time the current connection was established

    # -- iteration -----------------------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SSEEvent:
        while not self._closed:
            if self._events is None:
                await self._reconnect()
                continue
            sse = await self._read()
            if sse is None:
                continue
            self._remember(sse)
            event = _to_event(sse)
            if event is not None and event.type != CURSOR:
                self._received = True
                return event
        await self.aclose()
        raise StopAsyncIteration

    async def _read(self) -> ServerSentEvent | None:
        """The next message of the open stream; None when it ended or broke."""
        assert self._events is not None
        self._reading = True
        try:
            return await anext(self._events)
        except StopAsyncIteration:
            failed = False
        except (httpx.HTTPError, httpx.StreamError, SSEError):
            failed = True
        finally:
            self._reading = False
        await self._disconnect()
        self._ended(failed=failed)
        return None

    def _remember(self, sse: ServerSentEvent) -> None:
        if sse.retry is not None:
            self.server_retry = max(sse.retry / 1000, MIN_SERVER_RETRY)
        if sse.id:
            self.last_event_id = sse.id

    def _ended(self, *, failed: bool) -> None:
        """Plan the next connection. A stream that delivered events, or lived a while, ended
        for a reason (a task finished, a restart, a proxy's idle timeout, a dropped slow
        reader): reconnect at once, which also learns whether it is over (204). One that
        died at once counts as a failure and backs off."""
        if self._closed:
            return
        lived = asyncio.get_running_loop().time() - self._opened_at
        if self._received or lived >= QUICK_DEATH:
            self._failures, self._delay = 0, 0.0
            return
        self._count_failure(None)
        self._delay = self._backoff()

    def _count_failure(self, error: BaseException | None) -> None:
        self._failures += 1
        if self.max_retries is not None and self._failures > self.max_retries:
            raise RetriesExhaustedError(
                f"gave up on {self.url} after {self.max_retries} retries"
            ) from error

    def _backoff(self) -> float:
        base = self.reconnect_delay if self.reconnect_delay is not None else self.server_retry
        if self._failures == 0:
            return base
        delay = min(self.max_delay, base * 2.0 ** min(self._failures - 1, 32))
        return delay * random.uniform(0.5, 1.0)

    # -- connecting ----------------------------------------------------------------------------

    async def _reconnect(self) -> None:
        if self._delay > 0:
            await self._sleep(self._delay)
        if self._closed:
            return
        try:
            await self._connect()
        except (_RetryableError, httpx.HTTPError) as exc:
            await self._disconnect()
            self._count_failure(exc)
            retry_after = exc.retry_after if isinstance(exc, _RetryableError) else None
            self._delay = max(self._backoff(), retry_after or 0.0)

    async def _connect(self) -> None:
        stack = AsyncExitStack()
        self._connection = stack
        request_headers = {**self.headers, "Accept": "text/event-stream"}
        if self.last_event_id is not None:
            request_headers["Last-Event-ID"] = self.last_event_id
        stream = self._client.stream("GET", self.url, headers=request_headers, params=self.params)
        self._response = response = await stack.enter_async_context(stream)
        self.connects += 1
        self._received = False
        self._opened_at = asyncio.get_running_loop().time()
        if not await self._accepted(response):
            await self.aclose()
            return
        events = EventSource(response).aiter_sse()
        stack.push_async_callback(events.aclose)
        self._events = events

    async def _accepted(self, response: httpx.Response) -> bool:
        """True for a stream to read; False for 204 (the stream is over for good)."""
        status = response.status_code
        if status == 204:
            return False
        if status in RETRYABLE_STATUS:
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
            raise _RetryableError(f"HTTP {status}", retry_after)
        if status >= 300 or "text/event-stream" not in response.headers.get("content-type", ""):
            body = (await response.aread()).decode(errors="replace")[:500]
            await self.aclose()
            raise StreamRejectedError(status, body)
        return True

    async def _disconnect(self) -> None:
        stack, self._connection = self._connection, None
        self._events = self._response = None
        if stack is not None:
            await stack.aclose()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, cut short by aclose()."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    # -- closing -------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop following the stream; a reader waiting in another task gets StopAsyncIteration."""
        self._closed = True
        self._wake.set()
        if self._reading:
            if self._response is not None:
                await self._response.aclose()  # breaks the pending read; the reader cleans up
            return
        await self._disconnect()
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
