"""Soak: `litetask serve` taking tasks at a steady rate for a while, with finished tasks kept
10 s, shows the database and WAL files staying flat once retention has caught up.

    uv run python -m bench.soak [--seconds 300] [--rate 100] [--retention 10] [--every 10]

Tasks arrive over HTTP at --rate a second (demo.add mostly; one in ten fails twice, with
two attempts kept; one in ten carries a 2 KB payload), pruned --retention seconds after they
finish (LITETASK_PRUNE_INTERVAL=1). Every --every seconds it prints the size of the
database file and its WAL and the tasks by status. After a warm-up of three retention
periods, it compares the second half of the samples with the first: the growth ratio of
the largest file size in each (flat: about 1.0x; a file that keeps growing shows ~1.5x or
more).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.http import exchange, free_port, request_bytes, response, start_server, wait_ready

CONNECTIONS = 4
REQUESTS_PER_CONNECTION = 900
PAYLOAD = "x" * 2048


@dataclass
class Sample:
    at: float
    database: int
    wal: int
    queue: dict[str, int]


def body(n: int) -> bytes:
    """The n-th task: mostly demo.add; a failing one and a large one every ten."""
    if n % 10 == 3:
        task = {"task_type": "demo.fail", "max_attempts": 2}
    elif n % 10 == 7:
        task = {"task_type": "demo.echo", "kwargs": {"blob": PAYLOAD}}
    else:
        task = {"task_type": "demo.add", "args": [n, 1]}
    return json.dumps(task).encode()


async def submit_steadily(port: int, rate: float, seconds: float) -> int:
    """POST /tasks `rate` times a second for `seconds`, over a few keep-alive connections;
    returns how many were accepted."""
    per_connection = rate / CONNECTIONS
    counts = await asyncio.gather(
        *(_submitter(port, per_connection, seconds, offset) for offset in range(CONNECTIONS))
    )
    return sum(counts)


async def _submitter(port: int, rate: float, seconds: float, offset: int) -> int:
    started = time.perf_counter()
    sent = 0
    while time.perf_counter() - started < seconds:
        # A fresh connection before Hypercorn's keep_alive_max_requests (1000) closes it.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in range(REQUESTS_PER_CONNECTION):
                elapsed = time.perf_counter() - started
                if elapsed >= seconds:
                    break
                await asyncio.sleep(max(0.0, sent / rate - elapsed))
                request = request_bytes("POST", "/tasks", body(sent * CONNECTIONS + offset))
                if await exchange(reader, writer, request) != 202:
                    raise RuntimeError("a submit was refused")
                sent += 1
        finally:
            writer.close()
    return sent


async def queue(port: int) -> dict[str, int]:
    """The tasks by status, as GET /health tells them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        _, health = await response(reader, writer, request_bytes("GET", "/health"))
    finally:
        writer.close()
    found: dict[str, int] = json.loads(health)["queue"]
    return found


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


async def watch(port: int, database: Path, every: float, seconds: float) -> list[Sample]:
    started = time.perf_counter()
    samples: list[Sample] = []
    wal = database.with_name(database.name + "-wal")
    print(f"{'s':>5} {'database':>12} {'wal':>12}  tasks by status")
    while (at := time.perf_counter() - started) <= seconds:
        sample = Sample(at, size(database), size(wal), await queue(port))
        samples.append(sample)
        shown = " ".join(f"{k}={v}" for k, v in sample.queue.items() if v)
        print(f"{at:5.0f} {sample.database:12,} {sample.wal:12,}  {shown}", flush=True)
        await asyncio.sleep(every)
    return samples


def growth(samples: list[Sample], warm_up: float) -> tuple[float, float]:
    """Largest size in the second half of the samples after warm-up over the largest in the
    first half: (database, WAL)."""
    steady = [s for s in samples if s.at >= warm_up]
    if len(steady) < 4:
        raise SystemExit("too short a run to compare halves: give more --seconds")

    def ratio(sizes: list[int], half: int) -> float:
        return max(sizes[half:]) / max(max(sizes[:half]), 1)

    half = len(steady) // 2
    return (
        ratio([s.database for s in steady], half),
        ratio([s.wal for s in steady], half),
    )


async def soak(port: int, database: Path, args: argparse.Namespace) -> None:
    await wait_ready(port)
    watcher = asyncio.create_task(watch(port, database, args.every, args.seconds))
    accepted = await submit_steadily(port, args.rate, args.seconds)
    samples = await watcher
    warm_up = 3 * args.retention
    db_growth, wal_growth = growth(samples, warm_up)
    print(f"{accepted:,} tasks accepted in {args.seconds:.0f} s ({accepted / args.seconds:.0f}/s)")
    print(
        f"growth after a {warm_up:.0f} s warm-up, second half over first: "
        f"database {db_growth:.2f}x, WAL {wal_growth:.2f}x (flat: about 1.0x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--retention", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=10.0)
    args = parser.parse_args()
    settings = {
        "LITETASK_TASK_RETENTION_SECONDS": str(args.retention),
        "LITETASK_WEBHOOK_DEDUPE_SECONDS": "86400",
        "LITETASK_PRUNE_INTERVAL": "1",
        "LITETASK_RETRY_BACKOFF": "0.1",
    }
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_server(Path(tmp), port, **settings)
        try:
            asyncio.run(soak(port, Path(tmp) / "bench.db", args))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)


if __name__ == "__main__":
    main()
