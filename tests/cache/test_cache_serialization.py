"""The msgpack wire format: every supported value comes back equal, of the same type, and
meaning the same instant; everything else is refused with SerializationError."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from enum import IntEnum
from typing import Any
from zoneinfo import ZoneInfo

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.cache.keys import canonical_bytes
from app.cache.serialization import SerializationError, packb, unpackb
from tests.cache.strategies import values


@given(values)
def test_every_value_round_trips_equal(value: Any) -> None:
    assert unpackb(packb(value)) == value


@given(values)
def test_a_round_trip_changes_nothing_the_encoding_can_see(value: Any) -> None:
    # Stricter than ==: types (list vs tuple, set vs frozenset), -0.0 and fold all count.
    assert canonical_bytes(unpackb(packb(value))) == canonical_bytes(value)


@given(st.datetimes(timezones=st.timezones()))
def test_an_aware_datetime_keeps_its_instant_and_zone(value: datetime) -> None:
    result = unpackb(packb(value))

    assert result.utcoffset() == value.utcoffset()
    assert result.tzinfo == value.tzinfo
    assert result.fold == value.fold


def test_the_second_of_two_ambiguous_local_times_stays_the_second() -> None:
    paris = ZoneInfo("Europe/Paris")
    later = datetime(2021, 10, 31, 2, 30, fold=1, tzinfo=paris)

    result = unpackb(packb(later))

    assert result.utcoffset() == timedelta(hours=1)
    assert result.timestamp() == later.timestamp()


@given(st.times(timezones=st.timezones()))
def test_a_time_keeps_its_zone(value: time) -> None:
    result = unpackb(packb(value))

    assert result == value
    assert result.tzinfo == value.tzinfo


def test_a_time_with_a_fixed_offset_keeps_it() -> None:
    value = time(8, 0, tzinfo=timezone(timedelta(hours=-5)))

    assert unpackb(packb(value)).utcoffset() == timedelta(hours=-5)


def test_subclasses_travel_as_their_base_type() -> None:
    class Level(IntEnum):
        HIGH = 3

    assert unpackb(packb({"level": Level.HIGH})) == {"level": 3}
    assert type(unpackb(packb(Level.HIGH))) is int


def test_a_value_over_max_size_is_refused_not_truncated() -> None:
    data = packb("x" * 100)

    with pytest.raises(SerializationError, match=f"{len(data)} bytes, over the limit of 50"):
        packb("x" * 100, max_size=50)
    assert packb("x" * 100, max_size=len(data)) == data


@pytest.mark.parametrize("value", [object(), 2**64, {1, object()}, lambda: None])
def test_what_msgpack_cannot_carry_is_refused(value: Any) -> None:
    with pytest.raises(SerializationError):
        packb(value)


@pytest.mark.parametrize(
    "data",
    [
        b"\xc1",
        msgpack.packb(msgpack.ExtType(99, b"")),
        msgpack.packb(msgpack.ExtType(5, b"not a decimal")),
        msgpack.packb(msgpack.ExtType(1, msgpack.packb(["2024-01-01T00:00:00", "No/Where"]))),
    ],
    ids=["invalid-byte", "unknown-extension", "bad-decimal", "unknown-zone"],
)
def test_bytes_that_do_not_decode_raise_serialization_error(data: bytes) -> None:
    with pytest.raises(SerializationError):
        unpackb(data)


def test_decimal_keeps_its_exact_digits() -> None:
    assert str(unpackb(packb(Decimal("1.10")))) == "1.10"
