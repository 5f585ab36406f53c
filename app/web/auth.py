"""Who may call what: the bearer token, browser session cookies, and cross-site writes.

With LITETASK_API_TOKEN set, every request but the health probes (/health, /health/live,
/health/ready), /webhooks/*, POST /auth/session and the dashboard's data-free page and
assets (/, /dashboard, /static/*) needs `Authorization: Bearer <token>` or a session cookie
(app/web/sessions.py), /metrics included. Whatever the token, an unsafe request without a
bearer token that a browser marks as cross-site is refused (app/web/csrf.py), and one riding
on a session cookie must be JSON. Webhooks authenticate by signature instead.
"""

from __future__ import annotations

import hmac
import math
from urllib.parse import parse_qs

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app.clock import us_to_datetime
from app.config import Settings
from app.web.body import parse_json, read_body
from app.web.csrf import SAFE_METHODS, cross_site, is_json, is_unsafe
from app.web.dashboard import PAGE_PATHS, STATIC_PREFIX
from app.web.encoding import ApiJSONResponse, iso
from app.web.errors import Problem, problem_response
from app.web.routing import resource
from app.web.sessions import cookie_name, secure_cookie
from app.web.state import sessions_of, settings_of, throttle_of

SESSION_PATH = "/auth/session"
PUBLIC_PATHS = frozenset({"/health", "/health/live", "/health/ready", *PAGE_PATHS})
PUBLIC_PREFIXES = ("/webhooks/", STATIC_PREFIX + "/")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="litetask"'}
AUTHENTICATED = "litetask.authenticated"  # scope key: True when no token is set or it was sent


def is_authenticated(conn: HTTPConnection) -> bool:
    """Whether Admission let this request in on its credentials (False without it)."""
    return conn.scope.get(AUTHENTICATED) is True


def token_matches(given: str | bytes, token: str) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    presented = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(presented, token.encode())


class Admission:
    """Refuses, before routing: cross-site writes (403), requests without the token or a
    valid session (401), and session-cookie writes that are not JSON (415). Without a token
    a safe method (GET, HEAD, OPTIONS) has nothing to be refused for and passes untouched."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.settings.api_token is None and scope["method"] in SAFE_METHODS:
            scope[AUTHENTICATED] = True
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        # Public paths learn it too: /health shows its counts to authenticated callers only.
        scope[AUTHENTICATED] = has_credentials(conn, self.settings)
        refusal = refuse(conn, self.settings)
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            await refusal(scope, receive, send)


def refuse(conn: HTTPConnection, settings: Settings) -> Response | None:
    """The answer to a request that may not go on; None when it may."""
    if conn.scope["path"].startswith("/webhooks/"):
        return None
    bearer = _bearer(conn)
    if bearer is None and is_unsafe(conn):
        reason = cross_site(conn)
        if reason is not None:
            detail = f"a cross-site request may not change anything here ({reason})"
            return problem_response(403, "cross-site-request", detail)
    if settings.api_token is None or _is_public(conn):
        return None
    if bearer is not None:
        return None if token_matches(bearer, settings.api_token) else _unauthorized()
    return _session_refusal(conn, settings)


def has_credentials(conn: HTTPConnection, settings: Settings) -> bool:
    """The request carries the token or a valid session (always true without a token)."""
    token = settings.api_token
    if token is None:
        return True
    bearer = _bearer(conn)
    if bearer is not None:
        return token_matches(bearer, token)
    sessions = sessions_of(conn)
    cookie = conn.cookies.get(cookie_name(secure_cookie(conn, settings)))
    return sessions is not None and cookie is not None and sessions.valid(cookie)


def _bearer(conn: HTTPConnection) -> bytes | None:
    scheme, _, given = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    # Header values arrive latin-1 decoded; compare the bytes that were sent.
    return given.strip().encode("latin-1")


def _is_public(conn: HTTPConnection) -> bool:
    path = conn.scope["path"]
    if path == SESSION_PATH:
        return bool(conn.scope["method"] == "POST")
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _session_refusal(conn: HTTPConnection, settings: Settings) -> Response | None:
    sessions = sessions_of(conn)
    cookie = conn.cookies.get(cookie_name(secure_cookie(conn, settings)))
    if sessions is None or cookie is None or not sessions.valid(cookie):
        return _unauthorized()
    if is_unsafe(conn) and not is_json(conn):
        return problem_response(
            415,
            "unsupported-media-type",
            "a request that changes something with a session cookie must send "
            "Content-Type: application/json",
        )
    return None


def _unauthorized() -> Response:
    return problem_response(
        401,
        "unauthorized",
        "send Authorization: Bearer <LITETASK_API_TOKEN> or a session cookie "
        "from POST /auth/session",
        headers=CHALLENGE,
    )


async def create_session(request: Request) -> Response:
    """Trade the API token (JSON `{"token": ...}` or form `token=...`) for a session cookie;
    429 while this client address is locked out after failed attempts."""
    settings = settings_of(request)
    if settings.api_token is None:
        return ApiJSONResponse({"auth_required": False, "expires_at": None})
    throttle, address = throttle_of(request), _address(request)
    wait = throttle.retry_after(address)
    if wait is not None:
        raise Problem(
            429,
            "too-many-login-attempts",
            f"too many failed attempts from this address; try again in {math.ceil(wait)} s",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    given = await _token_from_body(request, settings.max_body_bytes)
    if given is None or not token_matches(given, settings.api_token):
        throttle.failed(address)
        raise Problem(401, "unauthorized", "the token is not valid", headers=CHALLENGE)
    throttle.succeeded(address)
    sessions = sessions_of(request)
    assert sessions is not None  # the lifespan opens them whenever a token is set
    value, expires = sessions.issue()
    response = ApiJSONResponse(
        {"auth_required": True, "expires_at": iso(us_to_datetime(expires * 1_000_000))}
    )
    secure = secure_cookie(request, settings)
    response.set_cookie(
        cookie_name(secure),
        value,
        max_age=settings.session_ttl,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    return response


async def end_session(request: Request) -> Response:
    """End every session (this browser's and all others): authenticated callers only."""
    sessions = sessions_of(request)
    if sessions is not None:
        await sessions.end_all()
    response = Response(status_code=204)
    secure = secure_cookie(request, settings_of(request))
    response.delete_cookie(
        cookie_name(secure), path="/", httponly=True, samesite="strict", secure=secure
    )
    return response


def _address(request: Request) -> str:
    """The client's address (a trusted proxy's X-Forwarded-For, see app/web/perimeter.py)."""
    return request.client.host if request.client is not None else "unknown"


async def _token_from_body(request: Request, limit: int) -> str | None:
    raw = await read_body(request, limit)
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        values = parse_qs(raw.decode("utf-8", "replace")).get("token", [])
        return values[0] if values else None
    body = parse_json(raw)
    token = body.get("token") if isinstance(body, dict) else None
    return token if isinstance(token, str) else None


routes: list[BaseRoute] = [
    resource(SESSION_PATH, {"POST": create_session, "DELETE": end_session}),
]
