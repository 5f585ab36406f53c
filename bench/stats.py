"""GET /stats/throughput (the dashboard's sparkline) with a big finished history, against
GET /health on the same `litetask serve` process, and against an empty database.

    uv run python -m bench.stats [--rows 1000000] [--reads 300]

Three databases: empty; --rows finished tasks spread over the last 30 days; --rows finished
within the last hour (the worst case for the one read of history at the first request).
For each it prints the first request (which reads the history before the service started,
from ix_tasks_completed_at), then the median and p99 of --reads more (counted in memory)
and their ratio to GET /health's median.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
US = 1_000_000
DAY_US = 86_400 * US
HOUR_US = 3_600 * US


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def populate(database: Path, rows: int, span_us: int) -> None:
    """`rows` finished tasks (80 % completed, 20 % failed) ending within the last `span_us`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    url = f"sqlite+aiosqlite:///{database}"
    subprocess.run(
        [sys.executable, "-m", "app", "migrate", "--database-url", url],
        env=env,
        check=True,
        capture_output=True,
    )
    now = time.time_ns() // 1000
    empty, meta = b"\x90", json.dumps({})
    with closing(sqlite3.connect(database)) as conn, conn:
        conn.executemany(
            "INSERT INTO tasks (id, task_type, status, priority, args, kwargs, metadata, progress,"
            " attempts, max_attempts, interruptions, created_at, run_at, started_at, completed_at,"
            " from_cache, suspect) VALUES (?, 'bench', ?, 0, ?, x'80', ?, 1.0, 1, 1, 0, ?, ?, ?, ?,"
            " 0, 0)",
            (
                (f"t{i}", "failed" if i % 5 == 0 else "completed", empty, meta, at, at, at, at)
                for i in range(rows)
                for at in [now - random.randrange(span_us)]
            ),
        )


def timed(get: Callable[[], httpx.Response]) -> float:
    start = time.perf_counter()
    response = get()
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.text
    return elapsed


def measure(name: str, database: Path, reads: int) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LITETASK_LOG_LEVEL": "warning",
        "LITETASK_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/health/live").status_code == 200:
                        break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the server did not start"
                    time.sleep(0.1)
            first = timed(lambda: client.get("/stats/throughput"))
            stats = [timed(lambda: client.get("/stats/throughput")) for _ in range(reads)]
            health = [timed(lambda: client.get("/health")) for _ in range(reads)]
            totals = client.get("/stats/throughput").json()
    finally:
        server.terminate()
        server.wait(30)
    p50, p99 = statistics.median(stats), statistics.quantiles(stats, n=100)[98]
    print(
        f"{name:<28} first {first * 1000:7.1f} ms   then p50 {p50 * 1000:5.2f} ms"
        f"  p99 {p99 * 1000:5.2f} ms   /health p50 {statistics.median(health) * 1000:5.2f} ms"
        f"   ratio {p50 / statistics.median(health):4.2f}x"
        f"   (last hour: {totals['completed']} completed, {totals['failed']} failed)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        for name, rows, span in (
            ("empty", 0, HOUR_US),
            (f"{args.rows} over 30 days", args.rows, 30 * DAY_US),
            (f"{args.rows} in the last hour", args.rows, HOUR_US),
        ):
            database = Path(directory) / f"{name.replace(' ', '-')}.db"
            populate(database, rows, span)
            measure(name, database, args.reads)


if __name__ == "__main__":
    main()
