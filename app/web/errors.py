"""RFC 9457 problem+json for every error: one place maps exceptions to HTTP statuses.

Domain errors (TaskError) map by category, never by message text; web-level errors raise
`Problem`; anything else is a logged 500 with no internals in the body.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from types import MappingProxyType
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.errors import InvalidOptionError, TaskError, UnknownTaskTypeError
from app.web.encoding import dumps

logger = logging.getLogger(__name__)
PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:litetask:problem:"

STATUS_BY_CATEGORY: Mapping[str, int] = MappingProxyType(
    {
        "not_found": 404,
        "conflict": 409,
        "invalid_arguments": 422,
        "serialization": 422,
        "definition": 422,
        "idempotency_key_reused": 422,
        "unavailable": 503,
    }
)


class Problem(Exception):
    """An HTTP error with a problem type slug, a human detail and extension members."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.slug, self.detail = status, slug, detail
        self.headers = dict(headers or {})
        self.extensions = extensions


def problem_response(
    status: int,
    slug: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """A problem+json response; `slug` names the problem type (urn:litetask:problem:slug)."""
    body = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extensions,
    }
    return Response(dumps(body), status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


async def handle_problem(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.slug, exc.detail, headers=exc.headers, **exc.extensions)


async def handle_task_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TaskError)
    status = STATUS_BY_CATEGORY.get(exc.category, 500)
    if status == 500:
        return await handle_unexpected(request, exc)
    extensions: dict[str, Any] = {}
    if exc.task_id is not None:
        extensions["task_id"] = exc.task_id
    if isinstance(exc, UnknownTaskTypeError):
        extensions.update(task_type=exc.task_type, known_task_types=exc.known)
    if isinstance(exc, InvalidOptionError):
        extensions["errors"] = [{"field": exc.option, "message": exc.reason}]
    headers = {"Retry-After": "5"} if status == 503 else None
    slug = exc.category.replace("_", "-")
    return problem_response(status, slug, str(exc), headers=headers, **extensions)


async def handle_http_exception(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    slug = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "-")
    return problem_response(exc.status_code, slug, exc.detail, headers=exc.headers)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "internal-error", "an unexpected error occurred; see the log")


EXCEPTION_HANDLERS: Mapping[Any, Any] = MappingProxyType(
    {
        Problem: handle_problem,
        TaskError: handle_task_error,
        HTTPException: handle_http_exception,
        Exception: handle_unexpected,
    }
)
