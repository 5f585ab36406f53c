"""Slow clients cannot hold the service: a request body that stops arriving is cut (408
after LITETASK_BODY_TIMEOUT, or the connection closed after LITETASK_READ_TIMEOUT of
silence) with nothing stored."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import ServerProcess, free_loopback_port

Start = Callable[..., ServerProcess]
TOKEN = "slow-client-token-" + "x" * 20
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PARTIAL_TASK = b'{"task_type": "demo.echo", "args": ["'
PARTIAL_SESSION = b'{"token": "' + TOKEN.encode()[:10]


def raw_request(port: int, head: str, body: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head.encode("latin-1") + b"\r\n" + body)
    return sock


def read_until_closed(sock: socket.socket, within: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took;
    fails when it is still open after `within` seconds."""
    started = time.monotonic()
    sock.settimeout(within)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pytest.fail(f"still open after {within} s; got {received[:200]!r}")
    finally:
        sock.close()
    return received, time.monotonic() - started


def post_head(path: str, length: int, *extra: str) -> str:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        *extra,
    ]
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize(
    ("path", "partial"), [("/tasks", PARTIAL_TASK), ("/auth/session", PARTIAL_SESSION)]
)
def test_a_body_that_stops_arriving_is_cut_and_nothing_is_stored(
    start_server: Start, path: str, partial: bytes
) -> None:
    server = start_server(free_loopback_port(), LITETASK_BODY_TIMEOUT="1", LITETASK_API_TOKEN=TOKEN)
    port = int(server.url.rsplit(":", 1)[1])
    head = post_head(path, len(partial) + 100, f"Authorization: Bearer {TOKEN}")
    answer, took = read_until_closed(raw_request(port, head, partial), within=20)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    if answer:
        assert b"application/problem+json" in answer and b"body-timeout" in answer
    assert took < 15
    tasks = httpx.get(server.url + "/tasks", headers=AUTH).json()
    assert tasks["tasks"] == []
    assert httpx.get(server.url + "/health").status_code == 200  # still serving


def test_hypercorn_cuts_a_silent_client_before_the_body_deadline(start_server: Start) -> None:
    """With the body deadline far away, LITETASK_READ_TIMEOUT closes the connection of a
    client that went silent mid-body; the handler sees the disconnect, stores nothing and
    logs no error."""
    server = start_server(
        free_loopback_port(), LITETASK_BODY_TIMEOUT="60", LITETASK_READ_TIMEOUT="2"
    )
    port = int(server.url.rsplit(":", 1)[1])
    head = post_head("/tasks", len(PARTIAL_TASK) + 100)
    answer, took = read_until_closed(raw_request(port, head, PARTIAL_TASK), within=20)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert took < 15
    assert httpx.get(server.url + "/tasks").json()["tasks"] == []
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    output = server.output()
    assert "Traceback" not in output and "ERROR" not in output, output
