"""Cache keys: the default key is a stable digest of the call, and the seed's key functions
compose into keys a user can predict."""

from __future__ import annotations

import os
import subprocess
import sys
from enum import Enum, IntEnum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from app.cache import (
    MAX_KEY_LENGTH,
    CacheKeyContext,
    InvalidCacheKeyError,
    build_cache_key,
    compose_key_functions,
    default_cache_key,
    extract_key_component,
    key_component,
    key_context,
)
from tests.cache.strategies import MSGPACK_INTS, values

PROJECT_ROOT = Path(__file__).resolve().parents[2]
arguments = st.lists(values, max_size=3)
keyword_arguments = st.dictionaries(st.text(max_size=8), values, max_size=4)


def _reversed(mapping: dict[str, Any]) -> dict[str, Any]:
    return dict(reversed(list(mapping.items())))


def test_the_default_key_is_the_task_type_and_a_sha256_digest() -> None:
    key = default_cache_key("reports.build", [2024], {"region": "eu"})

    prefix, digest = key.split(":")
    assert prefix == "reports.build"
    assert len(digest) == 64
    assert int(digest, 16) >= 0


@given(arguments, keyword_arguments)
def test_equal_calls_give_equal_keys(args: list[Any], kwargs: dict[str, Any]) -> None:
    rebuilt_args, rebuilt_kwargs = list(args), _reversed(kwargs)

    assert default_cache_key("t", args, kwargs) == default_cache_key(
        "t", rebuilt_args, rebuilt_kwargs
    )


@given(st.dictionaries(st.text(max_size=5), MSGPACK_INTS, min_size=2, max_size=6))
def test_nested_mapping_order_does_not_matter(mapping: dict[str, int]) -> None:
    assert default_cache_key("t", [mapping], {"m": mapping}) == default_cache_key(
        "t", [_reversed(mapping)], {"m": _reversed(mapping)}
    )


@given(arguments, arguments, keyword_arguments)
def test_different_args_give_different_keys(
    first: list[Any], second: list[Any], kwargs: dict[str, Any]
) -> None:
    assume(first != second)

    assert default_cache_key("t", first, kwargs) != default_cache_key("t", second, kwargs)


@given(keyword_arguments, keyword_arguments)
def test_different_kwargs_give_different_keys(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    assume(first != second)

    assert default_cache_key("t", [], first) != default_cache_key("t", [], second)


def test_the_task_type_is_part_of_the_key() -> None:
    assert default_cache_key("a", [1], {}) != default_cache_key("b", [1], {})


def test_a_tuple_and_a_list_are_different_arguments() -> None:
    assert default_cache_key("t", [(1, 2)], {}) != default_cache_key("t", [[1, 2]], {})


def test_a_long_task_type_still_gives_a_key_that_fits() -> None:
    key = default_cache_key("x" * 500, [], {})

    assert len(key) <= MAX_KEY_LENGTH
    assert key != default_cache_key("x" * 499, [], {})


def test_keys_are_the_same_in_other_processes() -> None:
    """Sets of strings iterate in another order under another hash seed (this process has a
    random one); the key may not change."""
    code = (
        "from app.cache import default_cache_key\n"
        "print(default_cache_key('t', [{'alpha', 'beta', 'gamma', 'delta'}],"
        " {'b': frozenset({'x', 'y', 'z'}), 'a': {'k': 1, 'j': 2}}))"
    )
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )

    expected = default_cache_key(
        "t",
        [{"delta", "gamma", "beta", "alpha"}],
        {"a": {"j": 2, "k": 1}, "b": frozenset({"z", "y", "x"})},
    )
    assert result.stdout.strip() == expected


def _context(**overrides: Any) -> CacheKeyContext:
    context = key_context(
        "reports.build",
        [7, {"deep": "value"}],
        {"user_id": 42, "filters": {"b": 2, "a": 1}},
        metadata={"tenant": "acme", "version": "2"},
        entry_id="task-1",
    )
    return CacheKeyContext(**{**context, **overrides})  # type: ignore[typeddict-item]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("func_name", "s:reports.build"),
        ("kwargs.user_id", "i:42"),
        ("args.0", "i:7"),
        ("args.1.deep", "s:value"),
        ("metadata.tenant", "s:acme"),
        ("entry_id", "s:task-1"),
        ("kwargs.missing", "m:"),
        ("args.9", "m:"),
        ("func_name.more", "m:"),
    ],
)
def test_extract_key_component_follows_dot_paths(path: str, expected: str) -> None:
    assert extract_key_component(path)(_context()) == expected


def test_an_extracted_mapping_renders_the_same_in_any_order() -> None:
    extract = extract_key_component("kwargs.filters")
    shuffled = _context(kwargs={"user_id": 42, "filters": {"a": 1, "b": 2}})

    assert extract(_context()) == extract(shuffled)
    assert extract(_context()) != extract(_context(kwargs={"filters": {"a": 1}}))


def test_compose_key_functions_writes_each_part_as_a_netstring() -> None:
    key_fn = compose_key_functions(
        lambda ctx: ctx["func_name"],
        extract_key_component("kwargs.user_id"),
        extract_key_component("metadata.version"),
    )

    assert key_fn(_context()) == "13:reports.build,4:i:42,3:s:2,"


def test_compose_key_functions_needs_at_least_one_function() -> None:
    with pytest.raises(ValueError, match="at least one"):
        compose_key_functions()


def test_a_key_function_returning_a_non_string_is_refused() -> None:
    def user_id(context: CacheKeyContext) -> str:
        return context["kwargs"]["user_id"]  # type: ignore[no-any-return]  # an int: wrong

    with pytest.raises(InvalidCacheKeyError, match="user_id returned int"):
        compose_key_functions(user_id)(_context())


def test_key_component_names_a_part() -> None:
    @key_component("version")
    def version_key(context: CacheKeyContext) -> str:
        return str(context["metadata"].get("version", "1"))

    @key_component()
    def tenant(context: CacheKeyContext) -> str:
        return str(context["metadata"]["tenant"])

    assert version_key(_context()) == "version:2"
    assert compose_key_functions(tenant, version_key)(_context()) == "11:tenant:acme,9:version:2,"


def test_build_cache_key_uses_the_default_key_without_a_key_function() -> None:
    context = _context()

    assert build_cache_key(context) == default_cache_key(
        "reports.build", context["args"], context["kwargs"]
    )


def test_build_cache_key_uses_the_key_function_and_keeps_keys_short() -> None:
    assert build_cache_key(_context(), extract_key_component("metadata.tenant")) == "s:acme"
    long_key = build_cache_key(_context(), lambda ctx: "k" * 500)
    assert len(long_key) <= MAX_KEY_LENGTH
    assert long_key != build_cache_key(_context(), lambda ctx: "k" * 499)


@pytest.mark.parametrize("bad", ["", None, 42])
def test_build_cache_key_refuses_an_empty_or_non_string_key(bad: Any) -> None:
    with pytest.raises(InvalidCacheKeyError):
        build_cache_key(_context(), lambda ctx: bad)


def test_key_context_fills_in_defaults() -> None:
    context = key_context("t", (1, 2), {"a": 1})

    assert context == {
        "func_name": "t",
        "args": [1, 2],
        "kwargs": {"a": 1},
        "metadata": {},
        "entry_id": None,
    }


# -- keys never collide (issue 11) ---------------------------------------------------------


class Color(Enum):
    RED = 1
    BLUE = "blue"


class Level(IntEnum):
    LOW = 1


ABSENT = object()
# Values of every kind a key can be built from, enums included (they never reach the wire
# format, but a key is computed from the call as given).
key_values = values | st.sampled_from([*Color, *Level])


def _with_value(value: Any) -> CacheKeyContext:
    kwargs = {} if value is ABSENT else {"v": value}
    return key_context("t", [], kwargs)


def _same_input(first: Any, second: Any) -> bool:
    return type(first) is type(second) and bool(first == second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (1, "1"),
        (None, "None"),
        (None, "none"),
        (ABSENT, None),
        (ABSENT, "none"),
        (True, 1),
        (1, 1.0),
        (Color.RED, 1),
        (Level.LOW, 1),
        (Color.BLUE, "blue"),
        ("", None),
    ],
)
def test_extract_key_component_tells_types_apart(first: Any, second: Any) -> None:
    extract = extract_key_component("kwargs.v")

    assert extract(_with_value(first)) != extract(_with_value(second))


@given(key_values | st.just(ABSENT), key_values | st.just(ABSENT))
def test_distinct_extracted_values_give_distinct_keys(first: Any, second: Any) -> None:
    assume(not _same_input(first, second))
    extract = extract_key_component("kwargs.v")

    assert extract(_with_value(first)) != extract(_with_value(second))


key_parts = st.lists(st.text(alphabet="ab:,0", max_size=4), min_size=1, max_size=4)


def _composed(parts: list[str]) -> str:
    funcs = [lambda ctx, i=i: ctx["args"][i] for i in range(len(parts))]
    return compose_key_functions(*funcs)(key_context("t", parts, {}))


def test_compose_key_functions_keeps_part_boundaries() -> None:
    assert _composed(["x:y", "z"]) != _composed(["x", "y:z"])
    assert _composed(["a", ""]) != _composed(["a"])


def _grouped(tokens: list[str], cuts: list[bool]) -> list[str]:
    """`tokens` joined with ":" into parts, a new part after each token whose cut is True."""
    parts, current = [], [tokens[0]]
    for token, cut in zip(tokens[1:], cuts, strict=False):
        if cut:
            parts.append(":".join(current))
            current = []
        current.append(token)
    return [*parts, ":".join(current)]


@given(key_parts, key_parts)
def test_distinct_parts_compose_to_distinct_keys(first: list[str], second: list[str]) -> None:
    assume(first != second)

    assert _composed(first) != _composed(second)


@given(st.lists(st.text(alphabet="ab:", max_size=3), min_size=2, max_size=5), st.data())
def test_the_same_text_cut_into_other_parts_is_another_key(
    tokens: list[str], data: st.DataObject
) -> None:
    """The parts of both keys join to the same text; only where they are cut differs."""
    cuts = st.lists(st.booleans(), min_size=len(tokens) - 1, max_size=len(tokens) - 1)
    first, second = _grouped(tokens, data.draw(cuts)), _grouped(tokens, data.draw(cuts))
    assume(first != second)

    assert _composed(first) != _composed(second)


@pytest.mark.parametrize(
    ("member", "value"), [(Color.RED, 1), (Level.LOW, 1), (Color.BLUE, "blue")]
)
def test_an_enum_argument_is_not_its_value(member: Enum, value: Any) -> None:
    assert default_cache_key("t", [member], {}) != default_cache_key("t", [value], {})
    assert default_cache_key("t", [{"k": member}], {}) != default_cache_key("t", [{"k": value}], {})
