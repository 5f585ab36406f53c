"""The Host allowlist (DNS rebinding): localhost names by default on loopback."""

from __future__ import annotations

import httpx
import pytest

from app.config import ConfigError, Settings
from tests.conftest import ClientFactory

TOKEN = "hosts-test-token-0123456789abcdefghij"


async def status_for(client: httpx.AsyncClient, host: str | bytes) -> int:
    return (await client.get("/health", headers={"host": host})).status_code


@pytest.mark.parametrize(
    "host",
    [
        *("localhost", "localhost:8000", "127.0.0.1", "127.0.0.1:8000", "[::1]", "[::1]:8000"),
        *("LocalHost", "LOCALHOST:8000", "localhost:099999"),
    ],
)
async def test_loopback_answers_localhost_names(client: httpx.AsyncClient, host: str) -> None:
    assert await status_for(client, host) == 200


@pytest.mark.parametrize(
    "host",
    [
        *("evil.example", "evil.example:8000", "10.0.0.1", "local", "localhost.evil.example"),
        # Near misses of an allowed name: a port that is no number, an empty one, two ports.
        *("localhost:", "localhost:80a", b"localhost:\xb2", "localhost:80:80", ":8000"),
        *("127.0.0.1 ", "[::1]:8000:1", "localhost@evil.example"),
    ],
)
async def test_loopback_refuses_other_names(client: httpx.AsyncClient, host: str | bytes) -> None:
    """A page on evil.example whose name now resolves to 127.0.0.1 still sends Host:
    evil.example; refusing it stops the rebinding."""
    response = await status_for(client, host)
    assert response == 400
    assert (await client.get("/tasks", headers={"host": host})).status_code == 400


async def test_allowed_hosts_setting(make_client: ClientFactory) -> None:
    allowed = ("tasks.example.com", "*.internal.example")
    async with make_client(allowed_hosts=allowed) as client:
        assert await status_for(client, "tasks.example.com") == 200
        assert await status_for(client, "tasks.example.com:443") == 200
        assert await status_for(client, "a.internal.example") == 200
        assert await status_for(client, "localhost") == 400
        assert await status_for(client, "example.com") == 400


async def test_off_loopback_any_host_by_default(make_client: ClientFactory) -> None:
    async with make_client(host="0.0.0.0", api_token=TOKEN) as client:
        assert await status_for(client, "tasks.example.com") == 200


@pytest.mark.parametrize("value", ["foo*.example.com", "*example.com", "a b", "*.*.example"])
def test_bad_patterns_are_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="LITETASK_ALLOWED_HOSTS"):
        Settings.from_env({"LITETASK_ALLOWED_HOSTS": value})


@pytest.mark.parametrize("value", ["10.0.0.300", "fly", "10.0.0.0/33", "*.example"])
def test_bad_trusted_proxies_are_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="LITETASK_TRUSTED_PROXIES"):
        Settings.from_env({"LITETASK_TRUSTED_PROXIES": value})
