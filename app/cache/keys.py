"""Cache keys: the default digest of a call, and the seed's composable key functions.

A key must be the same in every process and after every restart, because cache entries
outlive the process that wrote them. So nothing here uses `hash()` or `repr()` of containers:
values are encoded as canonical msgpack (maps sorted, sets sorted, enums as their class and
member) and digested with SHA-256. Equal calls give equal keys; values that are merely equal
in Python but written differently (1 and 1.0, Decimal("1.0") and Decimal("1.00")) may give
different keys, which costs a miss, never a wrong hit.

Key functions never let two distinct inputs meet (TupleHash's rule, in readable text): an
extracted value says its type (`s:1` is the string, `i:1` the int, `n:` None, `m:` a path
that leads nowhere), and `compose_key_functions` writes each part as a netstring
(`<length>:<part>,`), so no choice of parts can shift a boundary.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any, TypedDict

import msgpack

from app.cache.errors import InvalidCacheKeyError
from app.cache.serialization import packb

# The tasks.cache_key column holds 128 characters; every key this module returns fits.
MAX_KEY_LENGTH = 128
_PREFIX_LENGTH = MAX_KEY_LENGTH - 65  # room for ":" and a SHA-256 hex digest
# Extension codes used only inside digests (never decoded), apart from the wire format's.
_CANONICAL_SET, _CANONICAL_FROZENSET, _CANONICAL_ENUM = 64, 65, 66
# What extract_key_component renders where its path leads nowhere.
MISSING_PART = "m:"


class CacheKeyContext(TypedDict):
    """What a key function sees: the call, its metadata and the task id (None before one
    exists). `func_name` is the task type."""

    func_name: str
    args: list[Any]
    kwargs: dict[str, Any]
    metadata: dict[str, Any]
    entry_id: str | None


KeyFunction = Callable[[CacheKeyContext], str]


def key_context(
    func_name: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    metadata: Mapping[str, Any] | None = None,
    entry_id: str | None = None,
) -> CacheKeyContext:
    """The context a key function is called with."""
    return CacheKeyContext(
        func_name=func_name,
        args=list(args),
        kwargs=dict(kwargs),
        metadata=dict(metadata or {}),
        entry_id=entry_id,
    )


def canonical_bytes(value: Any) -> bytes:
    """`value` as msgpack whose bytes depend only on the value, not on insertion order."""
    return packb(_canonical(value))


def digest(value: Any) -> str:
    """SHA-256 hex digest of `value`'s canonical encoding."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


def default_cache_key(task_type: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """`<task type>:<sha256 of task type, args and kwargs>`; kwargs order does not matter."""
    call_digest = digest([task_type, list(args), dict(kwargs)])
    return f"{task_type[:_PREFIX_LENGTH]}:{call_digest}"


def build_cache_key(context: CacheKeyContext, key_fn: KeyFunction | None = None) -> str:
    """The key for a call: `key_fn(context)` when given (checked, and shortened by
    `normalize_key`), else `default_cache_key` of the call."""
    if key_fn is None:
        return default_cache_key(context["func_name"], context["args"], context["kwargs"])
    return normalize_key(key_fn(context))


def normalize_key(key: object) -> str:
    """`key` itself when it is a non-empty string of at most MAX_KEY_LENGTH characters; a
    longer one becomes its first characters plus its SHA-256 (stable, and still unique)."""
    if not isinstance(key, str) or not key:
        raise InvalidCacheKeyError(f"a cache key must be a non-empty str, not {key!r}", key=key)
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return f"{key[:_PREFIX_LENGTH]}:{hashlib.sha256(key.encode()).hexdigest()}"


def compose_key_functions(*funcs: KeyFunction) -> KeyFunction:
    """One key function whose key is the parts of several, each as a netstring
    (`<length>:<part>,`): parts ("x:y", "z") and ("x", "y:z") give different keys."""
    if not funcs:
        raise ValueError("compose_key_functions needs at least one key function")

    def composed(context: CacheKeyContext) -> str:
        parts = (_checked_part(func, func(context)) for func in funcs)
        return "".join(f"{len(part)}:{part}," for part in parts)

    return composed


def extract_key_component(key_path: str) -> KeyFunction:
    """A key function returning the value at a dot path of the context, e.g.
    "kwargs.user_id", "args.0" or "metadata.tenant", typed: "s:eu" (a str), "i:42" (an
    int), "f:0.5", "b:true", "n:" (None), "m:" (the path leads nowhere), and "h:<digest>" for
    anything else (containers, enums, dates...), so dict order cannot matter."""
    parts = key_path.split(".")

    def extract(context: CacheKeyContext) -> str:
        value: Any = context
        for part in parts:
            found, value = _step(value, part)
            if not found:
                return MISSING_PART
        return _render(value)

    return extract


def key_component(name: str | None = None) -> Callable[[KeyFunction], KeyFunction]:
    """Decorator naming a key function's output: `@key_component("version")` turns "2" into
    "version:2" (the function's own name when `name` is None)."""

    def decorator(func: KeyFunction) -> KeyFunction:
        label = name or func.__name__

        @functools.wraps(func)
        def named(context: CacheKeyContext) -> str:
            return f"{label}:{_checked_part(func, func(context))}"

        return named

    return decorator


def _checked_part(func: KeyFunction, part: object) -> str:
    if not isinstance(part, str):
        name = getattr(func, "__name__", repr(func))
        raise InvalidCacheKeyError(
            f"key function {name} returned {type(part).__name__}, expected str", key=part
        )
    return part


def _step(value: Any, part: str) -> tuple[bool, Any]:
    if isinstance(value, Mapping):
        return (True, value[part]) if part in value else (False, None)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes) and part.isdigit():
        index = int(part)
        return (True, value[index]) if index < len(value) else (False, None)
    return False, None


def _render(value: Any) -> str:
    """`value` as a typed part; exact types only, so a subclass (an IntEnum) is digested."""
    kind = type(value)
    if value is None:
        return "n:"
    if kind is bool:
        return "b:true" if value else "b:false"
    if kind is str:
        return f"s:{value}"
    if kind is int:
        return f"i:{value}"
    if kind is float:
        return f"f:{value!r}"
    return "h:" + digest(value)[:32]


def _canonical(value: Any) -> Any:
    """A copy of `value` whose msgpack encoding is deterministic."""
    if isinstance(value, Enum):
        member = f"{type(value).__module__}.{type(value).__qualname__}.{value.name}"
        return msgpack.ExtType(_CANONICAL_ENUM, member.encode())
    if isinstance(value, Mapping):
        pairs = sorted(((_canonical(k), _canonical(v)) for k, v in value.items()), key=_sort_key)
        return dict(pairs)
    if isinstance(value, tuple):
        return tuple(_canonical(item) for item in value)
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    if isinstance(value, set | frozenset):
        code = _CANONICAL_FROZENSET if isinstance(value, frozenset) else _CANONICAL_SET
        items = sorted(canonical_bytes(item) for item in value)
        return msgpack.ExtType(code, b"".join(items))
    return value


def _sort_key(pair: tuple[Any, Any]) -> bytes:
    return packb(pair[0])
