"""Logging for the `litetask` command: text lines for a terminal (the default), or one JSON
object per line (LITETASK_LOG_FORMAT=json) for a log collector.

A JSON line holds `timestamp` (ISO 8601, UTC), `level`, `logger`, `message`, `exception`
(the traceback) when there is one, and every field the call passed in `extra=`: the worker
passes `task_id`, `attempt` and `task_type` wherever a line is about one attempt, the access
log its request fields (app/web/access_log.py).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

ACCESS_LOGGER = "litetask.access"  # app/web/access_log.py
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# What every LogRecord carries; anything else on a record came from `extra=`.
STANDARD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in STANDARD_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=repr, ensure_ascii=False)


def configure_logging(
    level: str = "info",
    log_format: str = "text",
    *,
    access_log: bool = False,
    stream: TextIO | None = None,
) -> None:
    """Send every logger's records, and Python's warnings, to stderr (or `stream`) in
    `log_format`, from `level` up; with `access_log`, the access log's lines too, whatever
    the level."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.captureWarnings(True)
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO if access_log else logging.NOTSET)
