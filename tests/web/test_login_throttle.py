"""POST /auth/session slows down guessing: per client address, exponential, bounded memory."""

from __future__ import annotations

import asyncio

import httpx

from app.web.login_throttle import LoginThrottle
from tests.conftest import ClientFactory
from tests.web.helpers import assert_problem

TOKEN = "throttle-test-token-0123456789abcdefg"
ATTACKER = {"x-forwarded-for": "203.0.113.7"}
NEIGHBOUR = {"x-forwarded-for": "198.51.100.1"}


async def attempt(client: httpx.AsyncClient, token: str, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/auth/session", json={"token": token}, headers=headers)


async def test_failed_logins_lock_the_address_out(make_client: ClientFactory) -> None:
    """The test client is the trusted proxy here, so X-Forwarded-For names the address."""
    async with make_client(api_token=TOKEN, trusted_proxies=("127.0.0.1",)) as client:
        for _ in range(5):
            assert_problem(await attempt(client, "wrong", ATTACKER), 401)
        locked = await attempt(client, TOKEN, ATTACKER)  # even the right token waits
        body = assert_problem(locked, 429)
        assert body["type"].endswith(":too-many-login-attempts")
        assert 1 <= int(locked.headers["retry-after"]) <= 2
        assert "set-cookie" not in locked.headers
        assert (await attempt(client, TOKEN, NEIGHBOUR)).status_code == 200

        async with asyncio.timeout(15):  # the lockout ends after about a second
            while True:
                if (await attempt(client, TOKEN, ATTACKER)).status_code != 429:
                    break
                await asyncio.sleep(0.2)
        # A success forgets the failures: five more guesses before the next lockout.
        for _ in range(5):
            assert_problem(await attempt(client, "wrong", ATTACKER), 401)
        assert_problem(await attempt(client, "wrong", ATTACKER), 429)


async def test_each_lockout_over_http_is_twice_the_last(make_client: ClientFactory) -> None:
    """An address that guesses on after each lockout waits 1 s, then 2 s, then 4 s."""
    async with make_client(api_token=TOKEN, trusted_proxies=("127.0.0.1",)) as client:
        for _ in range(5):
            assert_problem(await attempt(client, "wrong", ATTACKER), 401)  # the fifth locks
        waits = []
        for _ in range(3):
            locked = await attempt(client, "wrong", ATTACKER)
            assert_problem(locked, 429)
            waits.append(int(locked.headers["retry-after"]))
            async with asyncio.timeout(20):  # guess again once the lockout ends: locked anew
                while True:
                    if (await attempt(client, "wrong", ATTACKER)).status_code != 429:
                        break
                    await asyncio.sleep(0.1)
        assert waits == [1, 2, 4], waits


async def test_a_flood_of_addresses_is_forgotten_beyond_the_bound(
    make_client: ClientFactory,
) -> None:
    """The service remembers at most 10,000 failing addresses (bounded memory): after a
    failure from each of 10,000 others, an address one guess short of a lockout is
    forgotten and starts afresh."""
    async with make_client(api_token=TOKEN, trusted_proxies=("127.0.0.1",)) as client:
        for _ in range(4):
            assert_problem(await attempt(client, "wrong", ATTACKER), 401)
        for n in range(10_000):
            flood = {"x-forwarded-for": f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"}
            assert (await attempt(client, "wrong", flood)).status_code == 401
        for _ in range(2):  # remembered, the first would lock it and the second be a 429
            assert_problem(await attempt(client, "wrong", ATTACKER), 401)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lockouts_double_up_to_the_cap() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    for _ in range(4):
        throttle.failed("a")
        assert throttle.retry_after("a") is None
    waits = []
    for _ in range(12):
        throttle.failed("a")
        wait = throttle.retry_after("a")
        assert wait is not None
        waits.append(wait)
        clock.now += wait
        assert throttle.retry_after("a") is None
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    throttle.succeeded("a")
    throttle.failed("a")
    assert throttle.retry_after("a") is None


def test_memory_is_bounded() -> None:
    throttle = LoginThrottle(max_addresses=3, clock=Clock())
    for n in range(10_000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}")
    assert len(throttle) == 3
    for _ in range(5):
        throttle.failed("203.0.113.7")
    assert throttle.retry_after("203.0.113.7") == 1
    assert len(throttle) == 3
