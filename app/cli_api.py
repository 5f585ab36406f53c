"""The operator CLI's side of the HTTP API: where the service is (--url, LITETASK_URL), the
token (LITETASK_API_TOKEN), and every failure as one line (`CliError`) rather than a
traceback: the service down, a refused token, an unknown task, a conflict.
"""

from __future__ import annotations

import json
import os
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlsplit

import httpx

from app.env_values import ConfigError

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT = 30.0
TOKEN_HINT = "; set LITETASK_API_TOKEN to the service's API token"


class CliError(Exception):
    """What went wrong, in one line for the operator (the command then exits 1)."""


def service_url(flag: str | None) -> str:
    """--url, else LITETASK_URL, else the default local service; ConfigError (exit 2) for
    anything but an http(s) URL with a host (the value is not echoed: it may hold a secret)."""
    url = (flag or os.environ.get("LITETASK_URL") or DEFAULT_URL).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"LITETASK_URL (or --url) must be an http:// or https:// URL of the service, "
            f"e.g. {DEFAULT_URL}"
        )
    return url


def auth_headers() -> dict[str, str]:
    """The bearer token from LITETASK_API_TOKEN, when set."""
    token = os.environ.get("LITETASK_API_TOKEN", "").strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def task_path(task_id: str, *rest: str) -> str:
    """/tasks/{id}[/rest...], the id percent-encoded."""
    return "/".join(["/tasks", quote(task_id, safe=""), *rest])


def problem_line(status: int, body: str) -> str:
    """An error answer as one line: the problem's detail (or the start of the body)."""
    detail = ""
    try:
        problem = json.loads(body)
        if isinstance(problem, dict):
            detail = str(problem.get("detail") or problem.get("title") or "")
    except ValueError:
        detail = " ".join(body.split())[:200]
    line = f"{detail or 'no detail given'} (HTTP {status})"
    return line + TOKEN_HINT if status == 401 else line


def unreachable(url: str, exc: Exception) -> CliError:
    reason = str(exc) or type(exc).__name__
    return CliError(f"cannot reach the service at {url} (--url, LITETASK_URL): {reason}")


class ApiClient:
    """A client of one service: each call returns the answer's JSON or raises CliError."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client = httpx.Client(base_url=url, headers=auth_headers(), timeout=TIMEOUT)

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: list[tuple[str, str]] | None = None,
    ) -> Any:
        try:
            response = self._client.request(method, path, json=body, params=tuple(params or ()))
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc) from None
        if not response.is_success:
            raise CliError(problem_line(response.status_code, response.text))
        try:
            return response.json()
        except ValueError:
            raise CliError(f"{self.url}{path} did not answer JSON; is it litetask?") from None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._client.close()
