from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from app import TaskDefinitionError, TaskRegistry, UnknownTaskTypeError
from app.worker import registry as registry_module


async def double(x: int) -> int:
    return x * 2


def test_register_and_look_up() -> None:
    registry = TaskRegistry()
    definition = registry.register("double", double, max_attempts=2)
    assert registry.get("double") is definition
    assert registry.name_of(double) == "double"
    assert definition.options == {"max_attempts": 2}
    assert registry.names() == ["double"]


def test_duplicate_type_raises_and_keeps_the_first() -> None:
    registry = TaskRegistry()
    registry.register("double", double)

    async def other(x: int) -> int:
        return x

    with pytest.raises(TaskDefinitionError, match="already registered"):
        registry.register("double", other)
    assert registry.get("double").func is double


def test_a_plain_function_is_taken_to_run_in_a_thread() -> None:
    def sync(x: int) -> int:
        return x

    assert not TaskRegistry().register("sync", sync).is_async
    assert TaskRegistry().register("double", double).is_async


def test_generators_and_non_functions_are_refused() -> None:
    def numbers() -> Iterator[int]:
        yield 1

    async def stream() -> AsyncIterator[int]:
        yield 1

    for wrong in (numbers, stream, "not callable"):
        with pytest.raises(TaskDefinitionError, match="must be a function"):
            TaskRegistry().register("wrong", wrong)  # type: ignore[arg-type]


def test_unknown_option_is_refused() -> None:
    with pytest.raises(TaskDefinitionError, match="unknown options"):
        TaskRegistry().register("double", double, retries=3)


def test_unknown_type_names_the_known_ones() -> None:
    registry = TaskRegistry()
    registry.register("double", double)
    with pytest.raises(UnknownTaskTypeError) as caught:
        registry.get("triple")
    assert caught.value.known == ["double"]
    assert "triple" in str(caught.value) and "double" in str(caught.value)


def test_decorator_fills_the_default_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = TaskRegistry()
    monkeypatch.setattr(registry_module, "default_registry", fresh)

    @registry_module.task("tests.greet", max_attempts=2)
    async def greet(name: str) -> str:
        """Say hello."""
        return f"hello {name}"

    assert registry_module.get_task_function("tests.greet") is greet.__wrapped__
    assert registry_module.get_all_task_types() == ["tests.greet"]
    assert fresh.get("tests.greet").doc == "Say hello."
    with pytest.raises(TaskDefinitionError):
        registry_module.register_task("tests.greet", greet)
