"""SSE encoding: ids only for logged events, the JSON body's fields, size caps, and that
what we write decodes with a standard SSE parser (httpx-sse's)."""

from __future__ import annotations

import json

from httpx_sse._decoders import SSEDecoder, SSELineDecoder

from app.events.log import EventType, TaskEvent
from app.events.sse import (
    MAX_FIELD_CHARS,
    cursor_message,
    encode_event,
    encode_events,
    event_data,
    reset_message,
    retry_hint,
)

COMPLETED = TaskEvent(
    EventType.COMPLETED,
    "t1",
    "echo",
    1_767_225_600_000_000,  # 2026-01-01T00:00:00Z
    {"status": "completed", "attempt": 2, "progress": 1.0, "from_cache": False},
    42,
)
EPOCH = "0123456789ab"


def decode(text: str) -> list[tuple[str, str, str, int | None]]:
    lines, decoder = SSELineDecoder(), SSEDecoder()
    out = []
    for line in [*lines.decode(text), *lines.flush()]:
        sse = decoder.decode(line)
        if sse is not None:
            out.append((sse.id, sse.event, sse.data, sse.retry))
    return out


def test_event_data_has_the_documented_fields_first() -> None:
    data = event_data(COMPLETED)
    assert list(data)[:8] == [
        "id",
        "type",
        "task_id",
        "task_type",
        "timestamp",
        "status",
        "progress",
        "attempt",
    ]
    assert data["id"] == 42
    assert data["type"] == "task.completed"
    assert data["timestamp"] == "2026-01-01T00:00:00+00:00"
    assert (data["status"], data["progress"], data["attempt"]) == ("completed", 1.0, 2)
    assert data["from_cache"] is False


def test_a_logged_event_carries_its_log_id_as_sse_id() -> None:
    [(sse_id, name, body, _)] = decode(encode_event(COMPLETED, EPOCH))
    assert (sse_id, name) == ("0123456789ab-42", "task.completed")
    assert json.loads(body) == event_data(COMPLETED)


def test_a_progress_event_has_no_sse_id() -> None:
    progress = TaskEvent(EventType.PROGRESS, "t1", "echo", 0, {"progress": 0.5})
    text = encode_event(progress, EPOCH)
    assert "id:" not in text
    [(_, name, body, _)] = decode(text)
    assert name == "task.progress"
    assert json.loads(body)["progress"] == 0.5
    assert json.loads(body)["id"] is None


def test_payload_never_overrides_identity_fields() -> None:
    sneaky = TaskEvent(EventType.QUEUED, "t1", "echo", 0, {"task_id": "other", "id": 7}, 3)
    data = event_data(sneaky)
    assert (data["task_id"], data["id"]) == ("t1", 3)


def test_big_results_and_errors_are_cut() -> None:
    payload = {"error": "e" * 10_000, "result": {"rows": list(range(5000))}, "note": "kept"}
    data = event_data(TaskEvent(EventType.FAILED, "t1", "echo", 0, payload, 1))
    assert len(data["error"]) == MAX_FIELD_CHARS and data["error_truncated"] is True
    assert isinstance(data["result"], str) and len(data["result"]) == MAX_FIELD_CHARS
    assert data["result_truncated"] is True
    assert data["note"] == "kept"
    small = event_data(TaskEvent(EventType.COMPLETED, "t1", "echo", 0, {"result": [1, 2]}, 1))
    assert small["result"] == [1, 2] and "result_truncated" not in small


def test_newlines_in_values_stay_inside_one_data_line() -> None:
    event = TaskEvent(EventType.FAILED, "t1", "echo", 0, {"error": "line1\nline2\r\n"}, 5)
    [(_, _, body, _)] = decode(encode_event(event, EPOCH))
    assert json.loads(body)["error"] == "line1\nline2\r\n"


def test_several_events_in_one_chunk_decode_in_order() -> None:
    events = [
        TaskEvent(EventType.QUEUED, "t1", "echo", 0, {}, 1),
        TaskEvent(EventType.STARTED, "t1", "echo", 0, {}, 2),
    ]
    decoded = decode(retry_hint(2500) + encode_events(events, EPOCH))
    assert decoded[0][3] == 2500
    assert [(i, name) for i, name, _, _ in decoded[1:]] == [
        ("0123456789ab-1", "task.queued"),
        ("0123456789ab-2", "task.started"),
    ]


def test_reset_message_names_the_newest_id() -> None:
    [(sse_id, name, body, _)] = decode(reset_message("expired", "3", EPOCH, 90))
    assert (sse_id, name) == ("0123456789ab-90", "reset")
    data = json.loads(body)
    assert (data["reason"], data["last_event_id"], data["id"]) == ("expired", "3", 90)
    assert data["epoch"] == EPOCH


def test_a_cursor_is_a_position_without_an_event() -> None:
    [(sse_id, name, body, _)] = decode(cursor_message(EPOCH, 7))
    assert (sse_id, name) == ("0123456789ab-7", "cursor")
    data = json.loads(body)
    assert (data["type"], data["id"], data["epoch"]) == ("cursor", 7, EPOCH)
    assert "task_id" not in data
