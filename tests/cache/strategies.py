"""Hypothesis strategies for values litetask's msgpack format carries."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from hypothesis import strategies as st

MSGPACK_INTS = st.integers(min_value=-(2**63), max_value=2**64 - 1)

hashable_scalars = st.one_of(
    st.none(),
    st.booleans(),
    MSGPACK_INTS,
    st.text(max_size=20),
    st.binary(max_size=20),
    st.uuids(),
    st.decimals(allow_nan=False),
    st.dates(),
    st.datetimes(timezones=st.none() | st.just(UTC) | st.timezones()),
    st.times(timezones=st.none() | st.just(UTC) | st.timezones()),
)
scalars = hashable_scalars | st.floats(allow_nan=False)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=10), children, max_size=4),
        st.sets(hashable_scalars, max_size=4),
        st.frozensets(hashable_scalars, max_size=4),
        st.dictionaries(st.tuples(st.text(max_size=5), MSGPACK_INTS), children, max_size=3),
    )


values = st.recursive(scalars, _containers, max_leaves=12)
