"""HTTP submit rate: accepted POST /tasks per second over loopback (and the tasks executed),
against the reference pipeline (../shared/reference/, bench/reference.py) under the same
Hypercorn and load, and against GET /health on the same `litetask serve` process, in the
same run. Submitted demo.add tasks are due at once, so each process also runs them while it
accepts more; --delayed prices litetask's acceptance alone.

    uv run python bench/http.py [--requests 5000] [--concurrency 64] [--seconds 20]
        [--rounds 3] [--delayed]

Each phase sends at most --requests requests (and stops after --seconds) over --concurrency
keep-alive connections from a minimal asyncio client, so the client costs little next to
the server. Executed/s: the phase's accepted tasks over the time until the last of them ran
(waited for at most 60 s). Prints each round and the median ratios over rounds: litetask /
reference (target 0.65) and submit / health. Without ../shared/reference the reference row
is skipped, saying so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DUE = {"task_type": "demo.add", "args": [1, 2]}


@dataclass
class Phase:
    name: str
    ok: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def line(self) -> str:
        q = statistics.quantiles(self.latencies, n=100)
        return (
            f"{self.name:<14} {self.rate:8.0f} req/s   p50 {q[49] * 1000:6.2f} ms"
            f"   p99 {q[98] * 1000:6.2f} ms   ({self.ok} ok)"
        )


def request_bytes(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send one request on a keep-alive connection; return the response status."""
    status, _ = await response(reader, writer, request)
    return status


async def response(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    """Send one request on a keep-alive connection; return the status and the body."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def connection(
    port: int, request: bytes, expect: int, quota: list[int], deadline: float
) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies: list[float] = []
    try:
        while quota[0] > 0 and time.perf_counter() < deadline:
            quota[0] -= 1
            started = time.perf_counter()
            status = await exchange(reader, writer, request)
            if status != expect:
                raise RuntimeError(f"expected {expect}, got {status}")
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()
    return latencies


async def phase(
    name: str, port: int, request: bytes, expect: int, args: argparse.Namespace
) -> Phase:
    quota = [args.requests]
    deadline = time.perf_counter() + args.seconds
    started = time.perf_counter()
    per_connection = await asyncio.gather(
        *(connection(port, request, expect, quota, deadline) for _ in range(args.concurrency))
    )
    elapsed = time.perf_counter() - started
    latencies = [x for xs in per_connection for x in xs]
    return Phase(name, len(latencies), elapsed, latencies)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(directory: Path, port: int, **settings: str) -> subprocess.Popen[bytes]:
    """`litetask serve` on `directory`/bench.db with the demo tasks (and `settings`: more
    LITETASK_* variables)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LITETASK_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'bench.db'}",
        "LITETASK_LOG_LEVEL": "warning",
        "LITETASK_DEMO": "1",
        **settings,
    }
    command = [sys.executable, "-m", "app", "serve", "--port", str(port)]
    return subprocess.Popen(command, env=env)


async def wait_ready(
    port: int, probe: bytes = request_bytes("GET", "/health"), timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        try:
            if await exchange(reader, writer, probe) == 200:
                return
        finally:
            writer.close()
    raise RuntimeError("the server did not become healthy")


@dataclass
class Server:
    """One server under test: how to start it, what a submit is, how many tasks it ran."""

    name: str
    start: Callable[[Path, int], subprocess.Popen[bytes]]
    submit: bytes
    ready: bytes
    executed: Callable[[int], Awaitable[int]]


@dataclass
class Round:
    accepted: float
    executed: float
    health: float | None = None


async def get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        _, body = await response(reader, writer, request_bytes("GET", path))
        return body
    finally:
        writer.close()


async def litetask_executed(port: int) -> int:
    """Tasks completed so far, from the finished-tasks counter of GET /metrics."""
    text = (await get(port, "/metrics")).decode()
    prefix = 'litetask_tasks_finished_total{status="completed"'
    return sum(
        int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines() if line.startswith(prefix)
    )


async def wait_executed(server: Server, port: int, wanted: int, timeout: float = 60) -> float:
    """perf_counter() when `wanted` tasks have run (polled every 20 ms)."""
    deadline = time.perf_counter() + timeout
    while await server.executed(port) < wanted:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{server.name}: tasks not executed within {timeout} s")
        await asyncio.sleep(0.02)
    return time.perf_counter()


async def measure(server: Server, port: int, args: argparse.Namespace) -> Round:
    """Warm up, then submits (and the time until they all ran); /health around them for
    litetask."""
    await wait_ready(port, server.ready)
    health = request_bytes("GET", "/health")
    warm = argparse.Namespace(**{**vars(args), "requests": 300})
    warmed = await phase("warm-up", port, server.submit, 202, warm)
    before = None
    if server.name == "litetask":
        await phase("warm-up", port, health, 200, warm)
        before = await phase("GET /health", port, health, 200, args)
    if not args.delayed:
        await wait_executed(server, port, warmed.ok)
    submits = await phase("POST /tasks", port, server.submit, 202, args)
    started = time.perf_counter() - submits.seconds
    executed = 0.0
    if not args.delayed:
        ran = await wait_executed(server, port, warmed.ok + submits.ok)
        executed = submits.ok / (ran - started)
    if before is None:
        return Round(submits.rate, executed)
    after = await phase("GET /health", port, health, 200, args)
    return Round(submits.rate, executed, (before.rate + after.rate) / 2)


def run_server(server: Server, args: argparse.Namespace) -> Round:
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        process = server.start(Path(directory), port)
        try:
            return asyncio.run(measure(server, port, args))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


def servers(args: argparse.Namespace) -> list[Server]:
    from bench.reference import executed_of, reference_dir, start_reference

    task = {**DUE, "delay": 3600} if args.delayed else DUE
    health = request_bytes("GET", "/health")
    ours = Server(
        "litetask",
        start_server,
        request_bytes("POST", "/tasks", json.dumps(task).encode()),
        health,
        litetask_executed,
    )
    where = reference_dir()
    if where is None:
        print("no ../shared/reference/ref_pipeline.py beside the repository: reference skipped")
        return [ours]

    async def executed(port: int) -> int:
        return executed_of(await get(port, "/stats"))

    body = json.dumps({"task": "noop", "args": [1, 2]}).encode()
    reference = Server(
        "reference",
        lambda directory, port: start_reference(where, directory, port),
        request_bytes("POST", "/tasks", body),
        request_bytes("GET", "/stats"),
        executed,
    )
    return [reference, ours]


def report(results: dict[str, list[Round]], args: argparse.Namespace) -> None:
    what = "delayed (acceptance only)" if args.delayed else "due (they run meanwhile)"
    print(f"concurrency {args.concurrency}, up to {args.requests} requests per phase, {what}")
    print(f"{'server':10}{'round':>6}{'POST/s':>9}{'executed/s':>12}{'health/s':>10}")
    for name, rounds in results.items():
        for index, r in enumerate(rounds):
            health = f"{r.health:10.0f}" if r.health is not None else f"{'':10}"
            print(f"{name:10}{index + 1:6}{r.accepted:9.0f}{r.executed:12.0f}{health}")
    ours = results["litetask"]
    health = statistics.median(r.accepted / (r.health or 1) for r in ours)
    print(f"median submit / health (litetask) = {health:.2f}")
    theirs = results.get("reference")
    if theirs is None:
        return
    pairs = list(zip(ours, theirs, strict=True))
    accepted = statistics.median(o.accepted / t.accepted for o, t in pairs)
    verdict = "meets" if accepted >= 0.65 else "misses"
    print(f"median accepted litetask / reference = {accepted:.2f} ({verdict} the 0.65 target)")
    if not args.delayed:
        executed = statistics.median(o.executed / t.executed for o, t in pairs)
        print(f"median executed litetask / reference = {executed:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--delayed", action="store_true", help="submit tasks due in an hour: price acceptance alone"
    )
    args = parser.parse_args()
    if __package__ in (None, ""):  # run as a file: the repository for `bench.reference`
        sys.path.insert(0, str(ROOT))
    targets = servers(args)
    results: dict[str, list[Round]] = {s.name: [] for s in targets}
    for _ in range(args.rounds):
        for server in targets:
            results[server.name].append(run_server(server, args))
    report(results, args)


if __name__ == "__main__":
    main()
