"""Values of a SQLite row made fit for PostgreSQL, or refused by name.

SQLite keeps whatever a program stores in a column: a blob in a text column, text in an
integer one, 64-bit integers where PostgreSQL has 32 bits, NUL characters, bytes that are not
UTF-8, invalid JSON. litetask reads such rows leniently (app/worker/rendering.py), but
PostgreSQL refuses them at the INSERT, so a move checks each value before sending it: copied
faithfully where PostgreSQL can hold it (a blob in a text column that is UTF-8 text is that
text; text in a blob column is its bytes), else an OddValue that says what is wrong.
Values arrive as the sqlite3 module gives them with `text_factory=bytes`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Integer,
    LargeBinary,
    String,
)

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
PREVIEW = 24


class OddValue(ValueError):
    """A value PostgreSQL cannot hold in its column; the message says why."""


def describe(raw: object) -> str:
    """A short, printable picture of a raw value, for an error message."""
    if isinstance(raw, bytes):
        more = "..." if len(raw) > PREVIEW else ""
        return f"{raw[:PREVIEW]!r}{more}"
    return repr(raw)


def _integer(bounds: tuple[int, int]) -> Callable[[object, Any], object]:
    low, high = bounds

    def convert(raw: object, _type: Any) -> object:
        if isinstance(raw, int) and low <= raw <= high:
            return raw
        raise OddValue(f"holds {describe(raw)}, not an integer from {low} to {high}")

    return convert


def _float(raw: object, _type: Any) -> object:
    if isinstance(raw, (int, float)):
        return float(raw)
    raise OddValue(f"holds {describe(raw)}, not a number")


def _boolean(raw: object, _type: Any) -> object:
    if raw in (0, 1):
        return bool(raw)
    raise OddValue(f"holds {describe(raw)}, not 0 or 1")


def _bytes(raw: object, _type: Any) -> object:
    if isinstance(raw, bytes):
        return raw
    raise OddValue(f"holds {describe(raw)}, not bytes")


def text_of(raw: object) -> str:
    """The text a raw value stands for: UTF-8 bytes decoded (strictly), numbers as SQLite
    itself would turn them into text."""
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise OddValue(f"holds {describe(raw)}, which is not UTF-8 text") from None
    if isinstance(raw, (int, float)):
        return str(raw)
    raise OddValue(f"holds {describe(raw)}, not text")


def _text(raw: object, column_type: Any) -> object:
    text = text_of(raw)
    if "\x00" in text:
        raise OddValue(f"holds {describe(raw)}, text with a NUL character")
    length = getattr(column_type, "length", None)
    if length is not None and len(text) > length:
        raise OddValue(f"holds {len(text)} characters, more than its {length}")
    return text


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _json(raw: object, _type: Any) -> object:
    if isinstance(raw, (int, float)):  # a JSON number, stored as one (NUMERIC affinity)
        return raw
    text = _text(raw, None)
    try:
        return json.loads(str(text), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise OddValue(f"holds {describe(raw)}, which is not JSON ({exc})") from None


# Most specific first: BigInteger is an Integer, Text a String.
_CONVERTERS: tuple[tuple[type[Any], Callable[[object, Any], object]], ...] = (
    (Boolean, _boolean),
    (BigInteger, _integer(INT64)),
    (Integer, _integer(INT32)),
    (Float, _float),
    (LargeBinary, _bytes),
    (JSON, _json),
    (String, _text),
)


def converter_of(column: Column[Any]) -> Callable[[object], object]:
    """The function that turns a raw SQLite value of `column` into what PostgreSQL takes."""
    for kind, convert in _CONVERTERS:
        if isinstance(column.type, kind):
            return _nullable(column, convert)
    raise TypeError(f"no conversion for column {column.name} of type {column.type!r}")


def _nullable(
    column: Column[Any], convert: Callable[[object, Any], object]
) -> Callable[[object], object]:
    def converted(raw: object) -> object:
        if raw is None:
            if column.nullable:
                return None
            raise OddValue("is NULL, but the column requires a value")
        return convert(raw, column.type)

    return converted
