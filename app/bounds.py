"""Bounds: every limit on what litetask accepts, in one module.

HTTP bodies and webhooks (app/web) and the Python API (`AsyncTaskWorker.add_task`/`submit`,
through app/worker/options.py) check values with these functions before anything reaches the
writer, so nothing stored can later fail to be read, rendered or run. Each check returns the
value (normalized) or raises InvalidOptionError naming the option. docs/api.md lists every
bound in one table; keep it in step.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from app.errors import InvalidOptionError, TaskBatchTooLargeError, TaskSerializationError

# Containers, counted from 1: [] is 1 deep, [[0]] 2. Each argument, each kwargs value, each
# metadata value and a result may be this deep; a JSON body too (the body object counts).
MAX_DEPTH = 64
MAX_ARGUMENTS_BYTES = 4 * 1024 * 1024  # args, and kwargs, each as packed msgpack
MAX_METADATA_BYTES = 64 * 1024  # metadata as JSON text
MAX_RESULT_ELEMENTS = 16 * 1024 * 1024  # elements of a result, counted while checking depth
MAX_TASK_TYPE_LENGTH = 200
MAX_TASK_ID_LENGTH = 64
MAX_IDEMPOTENCY_KEY_LENGTH = 255
PRIORITY_MIN, PRIORITY_MAX = -(2**31), 2**31 - 1
MAX_ATTEMPTS_LIMIT = 1000
MAX_SECONDS = 10 * 365 * 24 * 3600.0  # timeout, delay, cache_ttl
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)  # run_at, and every stored time
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
MAX_ERROR_CHARS = 64 * 1024  # an attempt's error message, and its traceback, as kept
MAX_BULK_TASKS = 1000  # tasks one bulk retry or cancel takes (ids given, or a filter's page)
MAX_BATCH_TASKS = 1000  # tasks one add_tasks call or POST /tasks/batch queues
# A batch's args and kwargs (packed) and metadata (JSON), all its tasks together: one batch is
# one transaction, held by the single writer while every other write waits, so it is kept to
# what SQLite writes in a fraction of a second. Two of the largest single tasks (2 x 4 MiB
# + 64 KiB) still fit, so any task that can be queued alone can be queued in a batch.
MAX_BATCH_BYTES = 16 * 1024 * 1024
MAX_SNOOZES = 100  # times a task may `raise Retry(...)` without spending an attempt
# Slots of one periodic task type queued at once (missed="all" after downtime), the latest:
# by default, and at most (LITETASK_MAX_MISSED_SLOTS).
DEFAULT_MISSED_SLOTS, MAX_MISSED_SLOTS_LIMIT = 100, 10_000

ONE_US = timedelta(microseconds=1)
CONTAINERS = (dict, list, tuple, set, frozenset)
SCALARS = frozenset({str, int, float, bool, type(None), bytes})  # skipped without isinstance
STRICT_JSON = json.JSONEncoder(allow_nan=False)  # as stored (ASCII), refusing NaN
CUT = " [cut]"
EARLIEST_US = 0
LATEST_US = (LATEST - EARLIEST) // ONE_US
RUN_AT_RANGE = f"from {EARLIEST:%Y-%m-%dT%H:%M:%SZ} to {LATEST:%Y-%m-%dT%H:%M:%SZ} UTC"


def nesting_problem(
    value: Any, max_depth: int, max_elements: int, *, within: bool = False
) -> str | None:
    """Why `value` is out of bounds (containers nested more than `max_depth` deep, or more
    than `max_elements` elements in all), else None; `within` bounds the values inside
    `value` (the args list, a kwargs or metadata object) rather than `value` itself.
    Iterative, one level at a time: a cyclic or much-shared value costs at most
    `max_elements` steps, and no recursion."""
    level, depth, elements = [value], -1 if within else 0, 0
    while True:
        containers = [v for v in level if type(v) not in SCALARS and isinstance(v, CONTAINERS)]
        if not containers:
            return None
        depth += 1
        if depth > max_depth:
            return f"is nested deeper than {max_depth} levels"
        level = []
        for container in containers:
            level.extend(container)
            if isinstance(container, dict):
                level.extend(container.values())
            elements += len(container)
            if elements > max_elements:
                return f"has more than {max_elements} elements"


def arguments(option: str, value: list[Any] | dict[str, Any]) -> None:
    """Each argument (each value of kwargs) at most MAX_DEPTH deep, before it is packed."""
    problem = nesting_problem(value, MAX_DEPTH, MAX_ARGUMENTS_BYTES, within=True)
    if problem is not None:
        raise InvalidOptionError(option, problem)


def packed_size(option: str, data: bytes) -> bytes:
    if len(data) > MAX_ARGUMENTS_BYTES:
        raise InvalidOptionError(
            option, f"is {len(data)} bytes packed, over the limit of {MAX_ARGUMENTS_BYTES}"
        )
    return data


def batch_bytes(total: int, args: bytes, kwargs: bytes, metadata: dict[str, Any]) -> int:
    """`total` (the batch's tasks so far) plus one more task's args, kwargs and metadata as
    stored; TaskBatchTooLargeError once past MAX_BATCH_BYTES, so a batch stops being built
    (and nothing is written) as soon as it is too large."""
    size = len(args) + len(kwargs) + (len(STRICT_JSON.encode(metadata)) if metadata else 0)
    if total + size > MAX_BATCH_BYTES:
        raise TaskBatchTooLargeError(MAX_BATCH_BYTES)
    return total + size


def metadata(value: Any) -> dict[str, Any]:
    """A JSON object whose values are at most MAX_DEPTH deep and whose JSON text is at most
    MAX_METADATA_BYTES."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidOptionError("metadata", "must be a JSON object")
    if not value:
        return value
    problem = nesting_problem(value, MAX_DEPTH, MAX_METADATA_BYTES, within=True)
    if problem is not None:
        raise InvalidOptionError("metadata", problem)
    try:
        size = len(STRICT_JSON.encode(value))
    except TypeError as exc:
        raise TaskSerializationError(f"metadata must be JSON-serializable: {exc}") from None
    except ValueError:
        raise InvalidOptionError("metadata", "must not hold NaN or infinity") from None
    if size > MAX_METADATA_BYTES:
        raise InvalidOptionError(
            "metadata", f"is {size} bytes as JSON, over the limit of {MAX_METADATA_BYTES}"
        )
    return value


def _integer(option: str, low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidOptionError(option, f"must be an integer from {low} to {high}")
        return int(value)

    return check


def _seconds(option: str, *, allow_zero: bool) -> Callable[[Any], float]:
    lowest = "non-negative" if allow_zero else "positive"

    def check(value: Any) -> float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not 0 <= value <= MAX_SECONDS or (value == 0 and not allow_zero):
            raise InvalidOptionError(
                option, f"must be a {lowest} number of seconds up to {MAX_SECONDS:.0f}"
            )
        return float(value)

    return check


def _text(option: str, max_length: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or not 0 < len(value) <= max_length or not _utf8(value):
            raise InvalidOptionError(
                option, f"must be a string of 1 to {max_length} characters (valid Unicode)"
            )
        return str(value)

    return check


def _utf8(text: str) -> bool:
    """False for a string with a lone surrogate, which neither SQLite nor JSON can carry."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def use_cache(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidOptionError("use_cache", "must be true or false")
    return value


priority = _integer("priority", PRIORITY_MIN, PRIORITY_MAX)
max_attempts = _integer("max_attempts", 1, MAX_ATTEMPTS_LIMIT)
timeout = _seconds("timeout", allow_zero=False)
delay = _seconds("delay", allow_zero=True)
cache_ttl = _seconds("cache_ttl", allow_zero=False)
task_type = _text("task_type", MAX_TASK_TYPE_LENGTH)
task_id = _text("task_id", MAX_TASK_ID_LENGTH)
idempotency_key = _text("idempotency_key", MAX_IDEMPOTENCY_KEY_LENGTH)


def run_at(value: Any) -> int:
    """A run_at datetime as stored (µs since the epoch); naive means UTC. Computed exactly,
    offsets included, so no datetime outside Python's range is ever built."""
    if not isinstance(value, datetime):
        raise InvalidOptionError("run_at", "must be a datetime")
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        stored = (moment - EARLIEST) // ONE_US
    except (ArithmeticError, TypeError, ValueError):
        stored = -1
    if not EARLIEST_US <= stored <= LATEST_US:
        raise InvalidOptionError("run_at", f"must be {RUN_AT_RANGE}")
    return stored


def storable_text(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """`text` as the database can keep it: at most `limit` characters (a cut is marked),
    lone surrogates written as their backslash escape."""
    if len(text) > limit:
        text = text[: limit - len(CUT)] + CUT
    if _utf8(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
