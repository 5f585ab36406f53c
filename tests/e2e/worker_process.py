"""A real worker process for the recovery tests: run with the repo root on PYTHONPATH.

    python tests/e2e/worker_process.py DB [--enqueue N --task work --arg MS] [--until-done]
        [--later N --delay S]   (N quick tasks due in S seconds, at priority -1)

Prints READY once started and ENQUEUED after the enqueue; SIGTERM/SIGINT stop it gracefully
(stop timeout from --stop-timeout) with exit code 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from app import ACTIVE, AsyncTaskWorker, TaskRegistry


def build_registry(fast: bool) -> TaskRegistry:
    registry = TaskRegistry()

    async def work(i: int, ms: float) -> int:
        await asyncio.sleep(ms / 1000)
        return i

    async def slow(seconds: float) -> str:
        if not fast:
            await asyncio.sleep(seconds)
        return "done"

    async def suicide() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    async def counted(path: str, seconds: float) -> str:
        """Leaves a line in `path` per run, so a test can count real executions."""
        with open(path, "a") as runs:  # noqa: ASYNC230 - a tiny append in a test task
            runs.write("run\n")
        if not fast:
            await asyncio.sleep(seconds)
        return "counted"

    registry.register("counted", counted, use_cache=True)
    registry.register("work", work)
    registry.register("slow", slow)
    registry.register("suicide", suicide)
    return registry


async def main(options: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = AsyncTaskWorker(
        f"sqlite+aiosqlite:///{options.database}",
        max_workers=options.max_workers,
        registry=build_registry(options.fast),
    )
    await worker.start()
    print("READY", flush=True)
    try:
        if options.enqueue:
            await enqueue(worker, options)
            print("ENQUEUED", flush=True)
        if options.until_done:
            await until_done(worker, stop)
        else:
            await stop.wait()
    finally:
        await worker.stop(timeout=options.stop_timeout)
    print("STOPPED", flush=True)
    return 0


async def enqueue(worker: AsyncTaskWorker, options: argparse.Namespace) -> None:
    for start in range(0, options.enqueue, 100):
        batch = range(start, min(start + 100, options.enqueue))
        await asyncio.gather(
            *[worker.add_task(options.task, *task_args(options, i)) for i in batch]
        )
    for i in range(options.later):  # quick tasks for later, at a better priority
        await worker.add_task("work", i, 0, delay=options.delay, priority=-1)


def task_args(options: argparse.Namespace, i: int) -> tuple[float | str, ...]:
    if options.task == "work":
        return (i, options.arg)
    if options.task == "slow":
        return (options.arg,)
    if options.task == "counted":
        return (options.file, options.arg)
    return ()


async def until_done(worker: AsyncTaskWorker, stop: asyncio.Event) -> None:
    while not stop.is_set():
        depth = await worker.queue_depth()
        if all(depth[status] == 0 for status in ACTIVE):
            return
        await asyncio.sleep(0.05)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("database")
    parser.add_argument("--enqueue", type=int, default=0)
    parser.add_argument("--task", default="work")
    parser.add_argument("--arg", type=float, default=30.0)
    parser.add_argument("--max-workers", type=int, default=10)
    parser.add_argument("--stop-timeout", type=float, default=5.0)
    parser.add_argument("--until-done", action="store_true")
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--file", default="")
    parser.add_argument("--later", type=int, default=0)
    parser.add_argument("--delay", type=float, default=2.0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse(sys.argv[1:]))))
