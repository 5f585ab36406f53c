"""msgpack with extension types: the one wire format for task arguments, results and cache
entries. No pickle anywhere; a value that cannot be carried raises SerializationError at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import msgpack

from app.errors import TaskSerializationError


class SerializationError(TaskSerializationError):
    """A value cannot be serialized (or deserialized) by litetask's msgpack format."""


_Clock = TypeVar("_Clock", datetime, time)
_DATETIME, _DATE, _TIME, _UUID, _DECIMAL, _SET, _FROZENSET, _TUPLE = range(1, 9)


def _zone_key(value: datetime | time) -> str | None:
    tz = value.tzinfo
    return tz.key if isinstance(tz, ZoneInfo) else None


def _encode_wall_clock(value: datetime | time) -> bytes:
    """A datetime or time as [isoformat, zone key, fold?]. A ZoneInfo is kept by name (an
    offset alone would lose DST rules); fold is kept so an ambiguous local time keeps its
    instant."""
    key = _zone_key(value)
    local = value.replace(tzinfo=None) if key else value
    fields: list[Any] = [local.isoformat(), key]
    if value.fold:
        fields.append(value.fold)
    return packb(fields)


def _default(obj: Any) -> Any:
    encoder = _ENCODERS.get(type(obj))
    if encoder is not None:
        code, encode = encoder
        return msgpack.ExtType(code, encode(obj))
    return _coerce_subclass(obj)


def _coerce_subclass(obj: Any) -> Any:
    """Plain values hiding in subclasses (an IntEnum, an OrderedDict) travel as their base."""
    if isinstance(obj, Enum):
        return obj.value
    for base in (bool, int, float, str, bytes, dict, list):
        if isinstance(obj, base):
            return base(obj)  # type: ignore[arg-type]
    if isinstance(obj, datetime):
        return msgpack.ExtType(_DATETIME, _encode_wall_clock(obj))
    raise SerializationError(f"cannot serialize a value of type {type(obj).__qualname__}")


_ENCODERS: dict[type, tuple[int, Callable[[Any], bytes]]] = {
    datetime: (_DATETIME, _encode_wall_clock),
    date: (_DATE, lambda v: v.isoformat().encode()),
    time: (_TIME, _encode_wall_clock),
    uuid.UUID: (_UUID, lambda v: v.bytes),
    Decimal: (_DECIMAL, lambda v: str(v).encode()),
    set: (_SET, lambda v: packb(list(v))),
    frozenset: (_FROZENSET, lambda v: packb(list(v))),
    tuple: (_TUPLE, lambda v: packb(list(v))),
}


def _decode_wall_clock(parse: Callable[[str], _Clock], data: bytes) -> _Clock:
    payload = unpackb(data)
    if isinstance(payload, str):  # a time written before zone keys were kept
        return parse(payload)
    text, key, *fold = payload
    value = parse(text)
    if key:
        value = value.replace(tzinfo=ZoneInfo(key))
    return value.replace(fold=fold[0]) if fold else value


_DECODERS: dict[int, Callable[[bytes], Any]] = {
    _DATETIME: lambda d: _decode_wall_clock(datetime.fromisoformat, d),
    _DATE: lambda d: date.fromisoformat(d.decode()),
    _TIME: lambda d: _decode_wall_clock(time.fromisoformat, d),
    _UUID: lambda d: uuid.UUID(bytes=d),
    _DECIMAL: lambda d: Decimal(d.decode()),
    _SET: lambda d: set(unpackb(d)),
    _FROZENSET: lambda d: frozenset(unpackb(d)),
    _TUPLE: lambda d: tuple(unpackb(d)),
}


def _ext_hook(code: int, data: bytes) -> Any:
    decode = _DECODERS.get(code)
    if decode is None:
        raise SerializationError(f"unknown msgpack extension type {code}")
    return decode(data)


def packb(value: Any, *, max_size: int | None = None) -> bytes:
    """Serialize `value`; refuse (never truncate) one larger than `max_size` bytes."""
    try:
        data: bytes = msgpack.packb(value, default=_default, strict_types=True, use_bin_type=True)
    except SerializationError:
        raise
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise SerializationError(f"cannot serialize value: {exc}") from exc
    if max_size is not None and len(data) > max_size:
        raise SerializationError(
            f"serialized value is {len(data)} bytes, over the limit of {max_size}"
        )
    return data


def unpackb(data: bytes) -> Any:
    """Deserialize bytes made by `packb`."""
    try:
        return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    except SerializationError:
        raise
    except (
        ValueError,
        TypeError,
        KeyError,
        ArithmeticError,
        RecursionError,
        msgpack.UnpackException,
    ) as exc:
        # KeyError: an unknown zone name; ArithmeticError: a malformed Decimal.
        raise SerializationError(f"cannot deserialize value: {exc}") from exc
