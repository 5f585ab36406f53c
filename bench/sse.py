"""SSE fan-out under load: N concurrent SSE clients on one Hypercorn server (127.0.0.1) while
tasks run at a fixed rate; the delay from an event's commit to its delivery, and server RSS.

    uv run python bench/sse.py [--clients 1000] [--rate 500] [--duration 10] [--dashboards 2]

Each of the N clients follows `/events?task_type=tK` (one task type each; tasks go round
robin over the types), so every connection is live but sees its own share; the dashboards
follow `/events` unfiltered (every event). Server, load and clients run in two processes.
A baseline run with one dashboard and no other client comes first; the report gives
p50/p99 per kind of client, the ratio of the loaded dashboard p99 to the baseline's, and the
server's RSS before and during the load. Target: p99 <= 250 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

# Run as a script, this folder comes first on sys.path, where bench/http.py would shadow the
# standard library's `http` (which httpx and Hypercorn import): take the folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

LIMITS = {"clients": 5000, "rate": 5000, "duration": 60, "dashboards": 50}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- server process ---------------------------------------------------------------------------


async def noop() -> None:
    return None


async def serve(args: argparse.Namespace) -> None:
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config
    from starlette.applications import Starlette

    from app.events.manager import EventManager
    from app.web.events import routes
    from app.web.streams import StreamLimits
    from app.worker.core import AsyncTaskWorker
    from app.worker.registry import TaskRegistry

    registry = TaskRegistry()
    for k in range(args.types):
        registry.register(f"t{k}", noop)
    manager = EventManager()
    # Every client connects from 127.0.0.1: raise the per-address cap (32 by default) and the
    # global one (1000) to what this run opens.
    streams = args.clients + args.dashboards + 1
    limits = StreamLimits(max_streams=streams, per_client=streams)
    url = f"sqlite+aiosqlite:///{args.db}"
    async with AsyncTaskWorker(url, 50, registry=registry, event_sink=manager.publish) as worker:

        @asynccontextmanager
        async def lifespan(_app: Starlette) -> Any:
            yield {"worker": worker, "events": manager, "streams": limits}

        config = Config()
        config.bind = [f"127.0.0.1:{args.port}"]
        config.accesslog = None
        config.errorlog = None
        config.backlog = 4096
        stop = asyncio.Event()

        async def trigger() -> None:
            await stop.wait()
            manager.close()

        app = Starlette(routes=routes, lifespan=lifespan)
        server = asyncio.create_task(hypercorn_serve(app, config, shutdown_trigger=trigger))  # type: ignore[arg-type]
        await asyncio.sleep(0.5)
        report = await drive(worker, args)
        stop.set()
        await server
    print(json.dumps(report), flush=True)


async def drive(worker: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Say ready, wait for "go", submit tasks at `rate` for `duration` s, sampling RSS."""
    rss_idle = rss_mb()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    rss_before, rss_max, submitted = rss_mb(), 0.0, 0
    pending: set[asyncio.Task[Any]] = set()
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < args.duration:
        due = int(elapsed * args.rate) - submitted
        for _ in range(max(due, 0)):
            task = asyncio.create_task(worker.add_task(f"t{submitted % args.types}"))
            pending.add(task)
            task.add_done_callback(pending.discard)
            submitted += 1
        rss_max = max(rss_max, rss_mb())
        await asyncio.sleep(0.01)
    await asyncio.gather(*pending)
    await asyncio.sleep(1.0)  # let the last tasks finish and deliver
    return {
        "rss_idle": rss_idle,
        "rss_before": rss_before,
        "rss_max": rss_max,
        "submitted": submitted,
    }


# -- client process ---------------------------------------------------------------------------


class Delays:
    def __init__(self) -> None:
        self.values: list[float] = []

    def feed(self, buffer: bytes) -> bytes:
        """Record the delay of every complete `data:` line of a task event (not the cursor
        each stream opens with); return the unfinished rest."""
        *lines, rest = buffer.split(b"\r\n")
        now = time.time()
        for line in lines:
            if line.startswith(b"data: {"):
                data = json.loads(line[6:])
                if data["type"].startswith("task."):
                    stamp = data["timestamp"]
                    self.values.append(now - datetime.fromisoformat(stamp).timestamp())
        return rest


async def follow(port: int, path: str, delays: Delays, connected: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    writer.write(request.encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(head.decode())
    # Live once its opening cursor arrived: the stream has subscribed by then.
    rest = await reader.readuntil(b"event: cursor")
    connected[0] += 1
    try:
        while chunk := await reader.read(65536):
            rest = delays.feed(rest + chunk)
    finally:
        writer.close()


async def clients(args: argparse.Namespace) -> None:
    per_type, dashboards, connected = Delays(), Delays(), [0]
    followers = []
    for k in range(args.clients):
        path = f"/events?task_type=t{k % args.types}"
        followers.append(asyncio.create_task(follow(args.port, path, per_type, connected)))
        if k % 100 == 99:
            await asyncio.sleep(0.05)  # stay under the listen backlog
    for _ in range(args.dashboards):
        followers.append(asyncio.create_task(follow(args.port, "/events", dashboards, connected)))
    while connected[0] < args.clients + args.dashboards:
        await asyncio.sleep(0.05)
        if failed := [f for f in followers if f.done()]:
            raise RuntimeError(f"{len(failed)} clients failed: {failed[0].exception()!r}")
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for follower in followers:
        follower.cancel()
    await asyncio.gather(*followers, return_exceptions=True)
    print(json.dumps({"per_type": per_type.values, "dashboards": dashboards.values}), flush=True)


# -- orchestration ------------------------------------------------------------------------------


def spawn(role: str, args: argparse.Namespace, **extra: Any) -> subprocess.Popen[str]:
    options = {**vars(args), **extra, "role": role}
    argv = [sys.executable, __file__, *(f"--{k}={v}" for k, v in options.items())]
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def expect_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(f"a bench process failed to start: {line!r}")


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write("stop\n")
    proc.stdin.flush()
    result: dict[str, Any] = json.loads(proc.stdout.readline())
    proc.wait(30)
    return result


def run(args: argparse.Namespace, directory: Path, name: str, **extra: Any) -> dict[str, Any]:
    """One server, one client process; returns the delays and the server's figures."""
    server = spawn("server", args, db=directory / f"{name}.db", **extra)
    try:
        expect_ready(server)
        client = spawn("clients", args, **extra)
        try:
            expect_ready(client)
            assert server.stdin is not None
            server.stdin.write("go\n")
            server.stdin.flush()
            load = finish(server)
            return {**finish(client), **load}
        finally:
            client.kill()
    finally:
        server.kill()


def quantiles(values: list[float]) -> str:
    if len(values) < 2:
        return f"n={len(values)}"
    cut = statistics.quantiles(values, n=100)
    return f"n={len(values)} p50={cut[49] * 1000:.1f}ms p99={cut[98] * 1000:.1f}ms"


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else float("nan")


def report(args: argparse.Namespace, base: dict[str, Any], loaded: dict[str, Any]) -> None:
    print(f"baseline (1 dashboard, {args.rate}/s): dashboard {quantiles(base['dashboards'])}")
    print(
        f"loaded ({args.clients} clients + {args.dashboards} dashboards, {args.rate}/s, "
        f"{loaded['submitted']} tasks):"
    )
    print(f"  per-type clients {quantiles(loaded['per_type'])}")
    print(f"  dashboards       {quantiles(loaded['dashboards'])}")
    ratio = p99(loaded["dashboards"]) / p99(base["dashboards"])
    print(f"  dashboard p99 loaded/baseline = {ratio:.2f}")
    expected = loaded["submitted"] * 3  # queued, started, completed
    print(
        f"  delivered {len(loaded['per_type'])}/{expected} to per-type clients, "
        f"{len(loaded['dashboards'])}/{expected * args.dashboards} to dashboards"
    )
    print(
        f"  server RSS {loaded['rss_idle']:.0f} MB idle, {loaded['rss_before']:.0f} MB with "
        f"the clients connected, {loaded['rss_max']:.0f} MB max under load"
    )
    worst = max(p99(loaded["per_type"]), p99(loaded["dashboards"]))
    print(f"target p99 <= 250 ms: {'met' if worst <= 0.25 else 'NOT met'} ({worst * 1000:.0f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--dashboards", type=int, default=2)
    parser.add_argument("--types", type=int, default=0, help="task types (0: one per client)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--role", default="main", choices=["main", "server", "clients"])
    parser.add_argument("--db", default="")
    args = parser.parse_args()
    for name, limit in LIMITS.items():
        setattr(args, name, min(getattr(args, name), limit))
    args.types = args.types or max(args.clients, 1)
    if args.role == "server":
        asyncio.run(serve(args))
    elif args.role == "clients":
        asyncio.run(clients(args))
    else:
        orchestrate(args)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def orchestrate(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        base_args = argparse.Namespace(**{**vars(args), "port": free_port()})
        base = run(base_args, directory, "base", clients=0, dashboards=1, duration=3)
        args.port = free_port()
        report(args, base, run(args, directory, "loaded"))


if __name__ == "__main__":
    main()
