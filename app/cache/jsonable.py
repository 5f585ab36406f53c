"""Task values as plain JSON, for HTTP responses and event payloads, and the one JSON
encoder both use (`dumps`, `json_text`), so a value reads the same wherever a client meets it.

Datetimes, dates and times become ISO 8601 strings, UUIDs and Decimals strings, sets and
tuples lists, bytes base64 strings, non-finite floats null, and mapping keys strings.
Conversion is depth-bounded: containers nested deeper than MAX_RENDER_DEPTH become null.
Stored values never come near it (app/bounds.py keeps them within MAX_DEPTH); the bound
only guarantees that no value can make rendering recurse without end.
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import orjson

from app.bounds import MAX_DEPTH

MAX_RENDER_DEPTH = 2 * MAX_DEPTH


PLAIN = frozenset({str, int, bool, type(None)})  # JSON as they are (exact types only)


def jsonable(value: Any, depth: int = MAX_RENDER_DEPTH) -> Any:
    """`value` as plain JSON types (see the module docstring for the mapping). Exact lists
    and dicts of plain values take a short path; anything else goes through `_converted`."""
    kind = type(value)
    if kind in PLAIN:
        return value
    if kind is list and depth > 0:
        return [v if type(v) in PLAIN else jsonable(v, depth - 1) for v in value]
    if kind is dict and depth > 0:
        return {
            k if type(k) is str else _key(k): v if type(v) in PLAIN else jsonable(v, depth - 1)
            for k, v in value.items()
        }
    return _converted(value, depth)


def _converted(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping | list | tuple | set | frozenset) and depth <= 0:
        return None
    if isinstance(value, Mapping):
        return {_key(k): jsonable(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, depth - 1) for v in value]
    return _scalar(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    converted = jsonable(key, MAX_DEPTH)
    return converted if isinstance(converted, str) else json.dumps(converted)


def _scalar(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    return repr(value)


# orjson takes only what both encoders write alike: exact str/int/float/bool/None, lists,
# tuples and dicts with str keys (subclasses, datetimes and dataclasses passed through to no
# `default`, so refused). It refuses lone surrogates, keys that are not strings and integers
# past 64 bits; those, and anything else it refuses, go to the standard library's encoder.
ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def dumps(content: Any) -> bytes:
    """Compact JSON bytes of plain JSON values (what `jsonable` returns): never a NaN or
    Infinity literal (null), and a lone surrogate written as its `\\uXXXX` escape, never an
    encoding error. orjson first (a listing's 23 KB in a seventh of the time), the standard
    library for whatever orjson refuses, with the same bytes as before for those."""
    try:
        return orjson.dumps(content, option=ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return _standard_dumps(content)


def dumps_decoded(content: Any) -> bytes:
    """`dumps(jsonable(content))` for content holding values as decoded from storage
    (msgpack with app/cache/serialization.py's extension types, or JSON text) and plain
    JSON, skipping `jsonable` when it has nothing to change: orjson writes what it takes as
    `jsonable` makes it (non-finite floats null, UUIDs as their text, tuples as lists) and
    refuses the rest (bytes, datetimes, Decimals, sets, keys that are not strings,
    subclasses). Not for arbitrary objects: orjson writes an enum or a numpy value its own
    way, where `jsonable` would write its repr."""
    try:
        return orjson.dumps(content, option=ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return dumps(jsonable(content))


def _standard_dumps(content: Any) -> bytes:
    text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8", "backslashreplace")


def json_text(value: Any) -> str:
    """`value` made plain by `jsonable`, then encoded as `dumps` does, as text."""
    return dumps(jsonable(value)).decode("utf-8")
