"""Server-Sent-Events encoding of task events, and the streaming response that carries them.

Each logged event becomes one SSE message: `id` is `<epoch>-<log id>` (app/events/epoch.py;
ephemeral progress events carry none, so a client's Last-Event-ID always names a logged
event), `event` is the event type and `data` one line of JSON (whose `id` is the log id).
Big results and errors are cut to `MAX_FIELD_CHARS`. A `cursor` message carries only a
position; a `reset` message tells the client to reload its state.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.types import Receive, Scope, Send

from app.cache.jsonable import json_text
from app.clock import us_to_datetime
from app.events.epoch import sse_id
from app.events.log import TaskEvent

RETRY_MS = 3000
HEARTBEAT_SECONDS = 15.0
SEND_TIMEOUT_SECONDS = 30.0
MAX_FIELD_CHARS = 4096
CAPPED_FIELDS = ("result", "error", "traceback")
RESET = "reset"
CURSOR = "cursor"
SNAPSHOT = "task.snapshot"
_BASE_FIELDS = frozenset({"id", "type", "task_id", "task_type", "timestamp"})


def iso(value: datetime | int | None) -> str | None:
    """A stored time (µs) or datetime as ISO 8601 in UTC."""
    moment = us_to_datetime(value) if isinstance(value, int) else value
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def cap(value: Any, limit: int = MAX_FIELD_CHARS) -> tuple[Any, bool]:
    """`value` as is when its JSON fits in `limit` characters, else a cut string preview;
    the flag says whether it was cut."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) <= limit:
        return value, False
    return text[:limit], True


def capped(fields: Mapping[str, Any]) -> dict[str, Any]:
    """`fields` with each of CAPPED_FIELDS cut to size; a cut field gets `<name>_truncated`."""
    out = dict(fields)
    for name in CAPPED_FIELDS:
        if out.get(name) is not None:
            out[name], cut = cap(out[name])
            if cut:
                out[f"{name}_truncated"] = True
    return out


def event_data(event: TaskEvent) -> dict[str, Any]:
    """The JSON body of one event: id, type, task_id, task_type, timestamp, status,
    progress and attempt first (None when the event does not say), then its payload."""
    payload = event.payload
    data: dict[str, Any] = {
        "id": event.id,
        "type": str(event.type),
        "task_id": event.task_id,
        "task_type": event.task_type,
        "timestamp": iso(event.created_at),
        "status": payload.get("status"),
        "progress": payload.get("progress"),
        "attempt": payload.get("attempt"),
    }
    data.update((k, v) for k, v in capped(payload).items() if k not in _BASE_FIELDS)
    return data


def encode(data: Mapping[str, Any], event: str, event_id: str | None = None) -> str:
    """One SSE message. JSON escapes every newline, so `data` is a single line."""
    body = json_text(data)  # the API's encoder: same values, strict JSON
    head = f"id: {event_id}\r\n" if event_id is not None else ""
    return f"{head}event: {event}\r\ndata: {body}\r\n\r\n"


def encode_event(event: TaskEvent, epoch: str) -> str:
    event_id = sse_id(epoch, event.id) if event.id is not None else None
    return encode(event_data(event), str(event.type), event_id)


def encode_events(events: Iterable[TaskEvent], epoch: str) -> str:
    return "".join(encode_event(e, epoch) for e in events)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def cursor_message(epoch: str, event_id: int) -> str:
    """A position without an event: everything the stream's filter matches up to
    `event_id` was delivered. EventSource keeps its id for the reconnect; listeners of
    task events never see it."""
    data = {"type": CURSOR, "id": event_id, "epoch": epoch, "timestamp": _now()}
    return encode(data, CURSOR, sse_id(epoch, event_id))


def reset_message(reason: str, last_event_id: str, epoch: str, newest_id: int) -> str:
    """Tells a client that events after `last_event_id` cannot be delivered (pruned, or
    that id is of another log): it should reload state; the stream goes on live after
    `newest_id`."""
    data = {
        "type": RESET,
        "reason": reason,
        "last_event_id": last_event_id,
        "id": newest_id,
        "epoch": epoch,
        "timestamp": _now(),
    }
    return encode(data, RESET, sse_id(epoch, newest_id))


def retry_hint(ms: int = RETRY_MS) -> str:
    return f"retry: {ms}\r\n\r\n"


class _StreamResponse(EventSourceResponse):
    """An EventSourceResponse that calls `on_close` when it is over, however it ends."""

    def __init__(self, *args: Any, on_close: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


def event_stream_response(
    body: AsyncIterator[bytes],
    *,
    heartbeat: float = HEARTBEAT_SECONDS,
    on_close: Callable[[], None] = lambda: None,
) -> EventSourceResponse:
    """A text/event-stream response for `body` (encoded messages, as bytes), with a heartbeat
    comment every `heartbeat` seconds and `X-Accel-Buffering: no` so proxies do not buffer.
    A client that stops reading for SEND_TIMEOUT_SECONDS is disconnected. `on_close` runs
    once the response is over (e.g. to free the stream's slot)."""
    return _StreamResponse(
        body,
        ping=heartbeat,
        send_timeout=SEND_TIMEOUT_SECONDS,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        on_close=on_close,
    )
