"""Counts by status with a long history: GET /health and the dashboard's first paint (GET /
plus the API calls the page makes on load: /health, /tasks?limit=50, /task-types), and
/metrics, on a database holding 1,000,000 finished tasks against an empty one and one
holding a single page of 50 (the page the dashboard shows is full in one case and empty in
the other; rendering 50 rows costs the same whatever the history), all served by `litetask
serve` in the same run (target: within 1.2x).

    uv run python -m bench.counts [--rows 1000000] [--requests 200] [--rounds 5]

The history is written with one INSERT ... SELECT before the server starts (seconds, not
the hours a real year takes). Readiness re-probes the database on every request
(LITETASK_HEALTH_INTERVAL=0), so /health pays for its counts each time. Requests go one at a
time over a keep-alive connection, alternating between the servers round by round; prints
the median latency of each and the ratio history/empty, then the server's CPU time per
measured read (all its threads' time on a CPU, from /proc/PID/task/*/schedstat, over every
round), which a busy machine disturbs much less than latency. `GET /tasks?limit=50` alone is
shown too: the part of the first paint whose size depends on the database (an empty one
lists nothing, so its own ratio is not the target's), and "dashboard load": every read the
page's script makes when it connects (DASHBOARD).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sqlite3
import statistics
import tempfile
import time
from contextlib import closing
from pathlib import Path

from app.clock import now_us
from app.db.engine import create_engines
from app.db.migrate import upgrade_sync
from bench.http import exchange, free_port, request_bytes, start_server, wait_ready

FIRST_PAINT = ("/", "/health", "/tasks?limit=50", "/task-types")
# Every read the dashboard's script makes when it connects (app/web/static/dashboard.js
# `connect`), after the page: the static assets (revalidated, constant) and the event
# stream (held open) left out.
DASHBOARD = (*FIRST_PAINT, "/openapi.json", "/stats/throughput", "/schedules")
MEASURED = {
    "GET /health": ("/health",),
    "first paint": FIRST_PAINT,
    "GET /metrics": ("/metrics",),
    "listing alone": ("/tasks?limit=50",),
    "dashboard load": DASHBOARD,
}
SETTINGS = {"LITETASK_HEALTH_INTERVAL": "0", "LITETASK_PRUNE_INTERVAL": "3600"}
BASELINES = {"empty": 0, "one page (50)": 50}  # name -> finished tasks


def make_database(directory: Path, rows: int) -> None:
    """A migrated bench.db in `directory` holding `rows` tasks that finished an hour ago."""
    url = f"sqlite+aiosqlite:///{directory / 'bench.db'}"
    engines = create_engines(url)
    upgrade_sync(engines.writer)
    engines.writer.dispose()
    if rows < 1:
        return
    done = now_us() - 3600 * 1_000_000
    with closing(sqlite3.connect(directory / "bench.db")) as conn, conn:
        conn.execute(
            "INSERT INTO tasks (id, task_type, status, priority, args, kwargs, metadata, "
            "progress, attempts, max_attempts, interruptions, created_at, run_at, "
            "started_at, completed_at, result, from_cache, suspect) "
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "SELECT 'history-' || i, 'demo.add', "
            "CASE i % 10 WHEN 0 THEN 'failed' WHEN 1 THEN 'cancelled' ELSE 'completed' END, "
            "0, x'920102', x'80', '{}', 1.0, 1, 1, 0, ?, ?, ?, ?, x'03', 0, 0 FROM n",
            (rows, done, done, done, done),
        )


async def timed(port: int, paths: tuple[str, ...], count: int) -> list[float]:
    """Seconds each of `count` rounds of GET `paths` (one after another) took."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    requests = [request_bytes("GET", path) for path in paths]
    took: list[float] = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            for request in requests:
                if await exchange(reader, writer, request) != 200:
                    raise RuntimeError(f"GET {paths} did not answer 200")
            took.append(time.perf_counter() - started)
    finally:
        writer.close()
    return took


def cpu_seconds(pid: int) -> float:
    """Time every thread of process `pid` has spent on a CPU so far."""
    tasks = Path(f"/proc/{pid}/task")
    total = 0
    for thread in tasks.iterdir():
        try:
            total += int((thread / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that just ended
    return total / 1e9


Figures = dict[str, dict[str, float]]  # server -> measured read -> seconds


async def measure(
    ports: dict[str, int], pids: dict[str, int], args: argparse.Namespace
) -> tuple[Figures, Figures]:
    """Median seconds per measured read, and server CPU seconds per read, per server,
    alternating servers round by round."""
    for port in ports.values():
        await wait_ready(port, timeout=120)
        for paths in MEASURED.values():
            await timed(port, paths, 20)  # warm-up
    samples: dict[str, dict[str, list[float]]] = {
        name: {what: [] for what in MEASURED} for name in ports
    }
    cpu = {name: dict.fromkeys(MEASURED, 0.0) for name in ports}
    each = args.requests // args.rounds
    for _ in range(args.rounds):
        for name, port in ports.items():
            for what, paths in MEASURED.items():
                before = cpu_seconds(pids[name])
                samples[name][what] += await timed(port, paths, each)
                cpu[name][what] += cpu_seconds(pids[name]) - before
    medians = {
        name: {what: statistics.median(xs) for what, xs in by_what.items()}
        for name, by_what in samples.items()
    }
    per_read = {
        name: {what: total / (each * args.rounds) for what, total in by_what.items()}
        for name, by_what in cpu.items()
    }
    return medians, per_read


def report(figures: Figures, history: str, unit: str) -> None:
    print(f"{unit:26}" + "".join(f"{what:>16}" for what in MEASURED))
    for name, by_what in figures.items():
        row = "".join(f"{by_what[what] * 1000:13.2f} ms" for what in MEASURED)
        print(f"{name:26}{row}")
    for baseline in BASELINES:
        ratios = "".join(f"{figures[history][w] / figures[baseline][w]:15.2f}x" for w in MEASURED)
        print(f"{'ratio to ' + baseline:26}{ratios}   (target <= 1.2x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    history = f"{args.rows:,} finished"
    sizes = {**BASELINES, history: args.rows}
    with tempfile.TemporaryDirectory() as tmp:
        directories = {name: Path(tmp) / f"db{i}" for i, name in enumerate(sizes)}
        started = time.perf_counter()
        for name, directory in directories.items():
            directory.mkdir()
            make_database(directory, sizes[name])
        print(f"built the databases in {time.perf_counter() - started:.1f} s")
        ports = {name: free_port() for name in directories}
        servers = [start_server(directories[name], ports[name], **SETTINGS) for name in directories]
        try:
            pids = {name: server.pid for name, server in zip(directories, servers, strict=True)}
            latency, cpu = asyncio.run(measure(ports, pids, args))
            report(latency, history, "median latency")
            report(cpu, history, "server CPU per read")
        finally:
            for server in servers:
                server.send_signal(signal.SIGTERM)
                server.wait(60)


if __name__ == "__main__":
    main()
