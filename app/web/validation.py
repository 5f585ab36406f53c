"""A small typed validator for JSON request bodies and query strings.

`Fields` reads one JSON object field by field and collects an error for each bad field, so a
422 lists every problem at once. Checks are plain functions that return the value or raise
`Invalid`, or the checks of app/bounds.py (InvalidOptionError): the bounds of task options
live there only, shared with the Python API.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypedDict, TypeVar

from app import bounds
from app.errors import InvalidOptionError
from app.web.errors import Problem

T = TypeVar("T")


class FieldError(TypedDict):
    field: str
    message: str


class Invalid(ValueError):
    """The value of one field is not acceptable; the message says what is expected."""


class Fields:
    """The fields of one JSON object (or query string), read with checks."""

    def __init__(self, source: Any, *, what: str = "the body") -> None:
        self.errors: list[FieldError] = []
        self._seen: set[str] = set()
        if isinstance(source, Mapping):
            self._source: Mapping[str, Any] = source
        else:
            self._source = {}
            self.errors.append({"field": "", "message": f"{what} must be a JSON object"})

    def get(self, name: str, check: Callable[[Any], T], *, required: bool = False) -> T | None:
        """The checked value of `name`; None when absent (an error when required)."""
        self._seen.add(name)
        if name not in self._source or self._source[name] is None:
            if required:
                self.errors.append({"field": name, "message": "is required"})
            return None
        return self.check(name, self._source[name], check)

    def check(self, name: str, value: Any, check: Callable[[Any], T]) -> T | None:
        """`check(value)`, or None with an error for `name` (a field, or a header)."""
        try:
            return check(value)
        except Invalid as exc:
            self.errors.append({"field": name, "message": str(exc)})
        except InvalidOptionError as exc:
            self.errors.append({"field": name, "message": exc.reason})
        return None

    def error(self, name: str, message: str) -> None:
        self.errors.append({"field": name, "message": message})

    def reject_unknown(self) -> None:
        for name in sorted(set(self._source) - self._seen):
            self.errors.append({"field": name, "message": "is not a known field"})

    def raise_if_invalid(self, what: str = "the request body") -> None:
        """422 listing every bad field, if there is one."""
        if self.errors:
            fields = ", ".join(e["field"] or "(body)" for e in self.errors)
            raise Problem(
                422, "invalid-request", f"{what} has invalid fields: {fields}", errors=self.errors
            )


def integer(low: int, high: int) -> Callable[[Any], int]:
    """An integer as JSON Schema counts them: `3`, or `3.0`."""

    def check(value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise Invalid(f"must be an integer from {low} to {high}")
        return value

    return check


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("must be true or false")
    return value


def json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid("must be a JSON object")
    return value


def json_array(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise Invalid("must be a JSON array")
    return value


def timestamp(value: Any) -> datetime:
    """An ISO 8601 date-time with a UTC offset (or Z), within the bounds of run_at."""
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise Invalid("must be an ISO 8601 date-time with a UTC offset, e.g. 2030-01-01T00:00:00Z")
    bounds.run_at(parsed)
    return parsed


def integer_text(low: int, high: int) -> Callable[[Any], int]:
    """An integer given as text (query strings)."""
    check_int = integer(low, high)

    def check(value: Any) -> int:
        text = str(value)
        if not (text.isascii() and text.lstrip("-").isdigit() and len(text) <= 20):
            raise Invalid(f"must be an integer from {low} to {high}")
        return check_int(int(text))

    return check


def one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise Invalid(f"must be one of {', '.join(choices)}")
        return str(value)

    return check
