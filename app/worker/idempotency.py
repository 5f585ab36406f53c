"""The fingerprint of a request made with an idempotency key.

It is stored with the key, so the same key again with a different request (another task
type, other arguments, other options) is refused instead of silently answered with the
first task: the IETF Idempotency-Key draft and Stripe behave the same way.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from app import bounds
from app.cache.serialization import packb

if TYPE_CHECKING:
    from app.worker.options import TaskOptions


def fingerprint(
    task_type: str, packed_args: bytes, kwargs: dict[str, Any], options: TaskOptions
) -> str:
    """SHA-256 (hex) of what shapes the task, as the caller gave it: the task type, the
    arguments (keyword order aside) and every option (None for one left out). Run on
    values already checked against app/bounds.py."""
    shape = [
        task_type,
        packed_args,
        packb(dict(sorted(kwargs.items()))),
        options.priority,
        options.task_id,
        json.dumps(options.metadata, sort_keys=True),
        _seconds(options.timeout),
        _seconds(options.delay),
        None if options.run_at is None else bounds.run_at(options.run_at),
        options.max_attempts,
        options.use_cache,
        _seconds(options.cache_ttl),
    ]
    return hashlib.sha256(packb(shape)).hexdigest()


def _seconds(value: float | None) -> float | None:
    """30 and 30.0 are the same request."""
    return None if value is None else float(value)
