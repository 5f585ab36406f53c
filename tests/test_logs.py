"""The JSON log format: one object per line, with the exception's traceback and the fields a
call passed in `extra=` (values JSON cannot hold are shown by their repr)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from app.logs import JsonFormatter


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("litetask.test_logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield logger, out
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_a_record_with_an_exception_and_extra_fields(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = logged
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logger.exception(
            "task %s failed", "t1", extra={"task_id": "t1", "attempt": 2, "odd": {1, 2}}
        )
    logger.warning("plain")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "task t1 failed" and first["level"] == "ERROR"
    assert first["logger"] == "litetask.test_logs"
    assert first["timestamp"].endswith("+00:00")
    assert (first["task_id"], first["attempt"], first["odd"]) == ("t1", 2, "{1, 2}")
    assert "ValueError: bad\nvalue" in first["exception"] and "Traceback" in first["exception"]
    assert set(second) == {"timestamp", "level", "logger", "message"}
