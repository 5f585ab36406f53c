"""Reading request bodies: a size limit enforced while streaming, a deadline, and strict JSON.

A body over the limit is refused with 413 as soon as the limit is crossed (or at once when
Content-Length says so); it is never read whole. JSON must be UTF-8 (strictly: no UTF-16/32,
no byte order mark), finite, free of lone surrogates and nested at most MAX_DEPTH deep
(app/bounds.py), so nothing that parses here can fail later on its way into the database.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Any

from starlette.requests import ClientDisconnect, Request

from app.bounds import MAX_DEPTH, nesting_problem
from app.web.errors import Problem
from app.web.state import settings_of

JSON_MEDIA_TYPES = ("application/json",)
# Strict UTF-8 cannot carry a surrogate, so a lone one can only arrive as a \uD800-\uDFFF
# escape; only bodies with such an escape pay for the full check.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, at most `limit` bytes (413 beyond), whole within the deadline
    LITETASK_BODY_TIMEOUT (408 beyond: a client that stops sending holds nothing for long)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    deadline = settings_of(request).body_timeout
    try:
        async with asyncio.timeout(deadline):
            return await _read_limited(request, limit)
    except TimeoutError:
        raise Problem(
            408,
            "body-timeout",
            f"the request body did not arrive within {deadline:g} s",
            headers={"Connection": "close"},
        ) from None
    except ClientDisconnect:
        raise Problem(400, "client-disconnected", "the body ended with the connection") from None


async def _read_limited(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> Problem:
    return Problem(
        413, "body-too-large", f"the request body is larger than {limit} bytes", limit=limit
    )


async def read_json(request: Request, limit: int) -> Any:
    """The body parsed as JSON (400 when it is not JSON, 415 for another media type)."""
    _check_media_type(request)
    return parse_json(await read_body(request, limit))


def _check_media_type(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in JSON_MEDIA_TYPES or media_type.endswith("+json"):
        return
    raise Problem(415, "unsupported-media-type", f"send application/json, not {media_type!r}")


def parse_json(raw: bytes) -> Any:
    """`raw` as JSON; 400 with the parser's complaint when it is not strictly UTF-8 (no
    UTF-16/32, no byte order mark), finite JSON nested at most MAX_DEPTH deep."""
    try:
        value = json.loads(
            raw.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float
        )
        _check_depth(raw, value)
        if SURROGATE_ESCAPE.search(raw):
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeError:
        raise Problem(400, "malformed-json", "the body is not valid UTF-8 text") from None
    except ValueError as exc:
        raise Problem(400, "malformed-json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise _too_deep() from None
    return value


def _check_depth(raw: bytes, value: Any) -> None:
    """A body with no more than MAX_DEPTH brackets cannot be nested deeper: only the rest
    pay for the walk."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return
    if nesting_problem(value, MAX_DEPTH, len(raw)) is not None:
        raise _too_deep()


def _too_deep() -> Problem:
    return Problem(
        400,
        "malformed-json",
        f"the body is nested deeper than {MAX_DEPTH} levels",
        max_depth=MAX_DEPTH,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large for a JSON number")
    return value
