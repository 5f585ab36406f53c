"""Task types that webhook tests deliver to (loaded through task_modules, as users do)."""

from __future__ import annotations

from typing import Any

from app.worker.registry import task


@task("hook.record")
async def record(payload: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Return what the delivery carried."""
    return {"payload": payload, "headers": headers}


@task("hook.github")
async def on_push(payload: Any, headers: dict[str, str]) -> str:
    return f"{headers['x-github-event']}:{payload['ref']}"


@task("hook.unsigned")
async def unsigned(payload: Any) -> Any:
    return payload
