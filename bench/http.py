"""HTTP submit rate: accepted POST /tasks per second over loopback, against GET /health on
the same `litetask serve` process in the same run (the baseline: the HTTP stack plus a
cached database probe). Submitted demo.add tasks are due at once, so the same process also
runs them while it accepts more; --delayed prices acceptance alone.

    uv run python bench/http.py [--requests 3000] [--concurrency 32] [--seconds 20] [--delayed]

Each phase sends at most --requests requests (and stops after --seconds) over --concurrency
keep-alive connections from a minimal asyncio client, so the client costs little next to
the server. Prints rate, p50 and p99 latency for each phase and submit/health (target 0.8).
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


async def wait_ready(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        try:
            if await exchange(reader, writer, request_bytes("GET", "/health")) == 200:
                return
        finally:
            writer.close()
    raise RuntimeError("the server did not become healthy")


async def run(args: argparse.Namespace, port: int) -> None:
    await wait_ready(port)
    health = request_bytes("GET", "/health")
    task = {**DUE, "delay": 3600} if args.delayed else DUE
    submit = request_bytes("POST", "/tasks", json.dumps(task).encode())
    warm = argparse.Namespace(**{**vars(args), "requests": 300})
    await phase("warm-up", port, health, 200, warm)
    await phase("warm-up", port, submit, 202, warm)
    baseline = await phase("GET /health", port, health, 200, args)
    submits = await phase("POST /tasks", port, submit, 202, args)
    after = await phase("GET /health", port, health, 200, args)
    what = "delayed (acceptance only)" if args.delayed else "due (they run meanwhile)"
    print(f"concurrency {args.concurrency}, up to {args.requests} requests per phase, tasks {what}")
    for result in (baseline, submits, after):
        print(result.line())
    base_rate = (baseline.rate + after.rate) / 2
    ratio = submits.rate / base_rate
    verdict = "meets" if ratio >= 0.8 else "misses"
    print(f"submit / health = {ratio:.2f} ({verdict} the 0.80 target)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--delayed", action="store_true", help="submit tasks due in an hour: price acceptance alone"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        server = start_server(Path(directory), port)
        try:
            asyncio.run(run(args, port))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)


if __name__ == "__main__":
    main()
