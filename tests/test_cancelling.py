"""cancel_and_wait ends a component's loops without swallowing the caller's own cancellation."""

from __future__ import annotations

import asyncio

import pytest

from app.cancelling import cancel_and_wait


async def test_every_loop_is_cancelled_and_awaited() -> None:
    ended: list[str] = []

    async def loop(name: str) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.01)  # some cleanup that takes a moment
            ended.append(name)

    loops = [asyncio.create_task(loop(n)) for n in ("a", "b")]
    await asyncio.sleep(0)
    await cancel_and_wait(*loops)
    assert sorted(ended) == ["a", "b"]
    assert all(task.cancelled() for task in loops)


async def test_a_loop_that_failed_raises_its_error_after_the_others_ended() -> None:
    async def broken() -> None:
        raise ValueError("broken loop")

    failed = asyncio.create_task(broken())
    slow = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="broken loop"):
        await cancel_and_wait(failed, slow)
    assert slow.cancelled()


async def test_the_callers_own_cancellation_is_kept() -> None:
    """A stop that is itself cancelled while it waits for a slow loop stops being waited
    for: it raises CancelledError instead of going on."""
    went_on = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(3600)  # slow to end once cancelled

    async def stop(loop: asyncio.Task[None]) -> None:
        await cancel_and_wait(loop)
        went_on.set()

    loop = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    stopping = asyncio.create_task(stop(loop))
    await asyncio.sleep(0.05)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert not went_on.is_set()
    loop.cancel()
