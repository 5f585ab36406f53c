"""Bearer-token auth, and short-lived signed session cookies for browsers.

With LITETASK_API_TOKEN set, every request but /health, /webhooks/*, POST /auth/session and
the dashboard's data-free page and assets (/, /dashboard, /static/*) needs
`Authorization: Bearer <token>` or a session cookie. POST /auth/session trades the token for
an HttpOnly, SameSite=Strict cookie holding `<expiry>.<nonce>.<HMAC>`: signed with a key
derived from the token (so changing the token ends every session), never the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app.web.body import parse_json, read_body
from app.web.dashboard import PAGE_PATHS, STATIC_PREFIX
from app.web.encoding import ApiJSONResponse, iso
from app.web.errors import Problem, problem_response
from app.web.routing import resource
from app.web.state import settings_of

SESSION_COOKIE = "litetask_session"
PUBLIC_PATHS = frozenset({"/health", "/auth/session", *PAGE_PATHS})
PUBLIC_PREFIXES = ("/webhooks/", STATIC_PREFIX + "/")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="litetask"'}
AUTHENTICATED = "litetask.authenticated"  # scope key: True when no token is set or it was sent


def is_authenticated(conn: HTTPConnection) -> bool:
    """Whether AuthMiddleware let this request in on its credentials (False without it)."""
    return conn.scope.get(AUTHENTICATED) is True


class SessionSigner:
    """Makes and checks session cookie values for one API token."""

    def __init__(self, token: str) -> None:
        self._key = hashlib.sha256(b"litetask-session\0" + token.encode()).digest()

    def issue(self, ttl: int) -> tuple[str, int]:
        expires = int(time.time()) + ttl
        payload = f"{expires}.{secrets.token_urlsafe(12)}"
        return f"{payload}.{self._sign(payload)}", expires

    def valid(self, value: str) -> bool:
        payload, _, signature = value.rpartition(".")
        expires = payload.split(".", 1)[0]
        if not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(signature.encode(), self._sign(payload).encode())

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_matches(given: str | bytes, token: str) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    presented = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(presented, token.encode())


class AuthMiddleware:
    """Rejects unauthenticated HTTP requests to non-public paths with 401 problem+json."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token
        self.signer = SessionSigner(token) if token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        # Public paths learn it too: /health shows its counts to authenticated callers only.
        authenticated = self.token is None or self._authenticated(HTTPConnection(scope))
        scope[AUTHENTICATED] = authenticated
        if authenticated or _is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        response = problem_response(
            401,
            "unauthorized",
            "send Authorization: Bearer <LITETASK_API_TOKEN> or a session cookie "
            "from POST /auth/session",
            headers=CHALLENGE,
        )
        await response(scope, receive, send)

    def _authenticated(self, conn: HTTPConnection) -> bool:
        assert self.token is not None and self.signer is not None
        scheme, _, given = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and given:
            # Header values arrive latin-1 decoded; compare the bytes that were sent.
            return token_matches(given.strip().encode("latin-1"), self.token)
        cookie = conn.cookies.get(SESSION_COOKIE)
        return cookie is not None and self.signer.valid(cookie)


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


async def create_session(request: Request) -> Response:
    """Trade the API token (JSON `{"token": ...}` or form `token=...`) for a session cookie."""
    settings = settings_of(request)
    if settings.api_token is None:
        return ApiJSONResponse({"auth_required": False, "expires_at": None})
    given = await _token_from_body(request, settings.max_body_bytes)
    if given is None or not token_matches(given, settings.api_token):
        raise Problem(401, "unauthorized", "the token is not valid", headers=CHALLENGE)
    value, expires = SessionSigner(settings.api_token).issue(settings.session_ttl)
    response = ApiJSONResponse({"auth_required": True, "expires_at": iso(_utc(expires))})
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=settings.session_ttl,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def end_session(_request: Request) -> Response:
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")
    return response


async def _token_from_body(request: Request, limit: int) -> str | None:
    raw = await read_body(request, limit)
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        values = parse_qs(raw.decode("utf-8", "replace")).get("token", [])
        return values[0] if values else None
    body = parse_json(raw)
    token = body.get("token") if isinstance(body, dict) else None
    return token if isinstance(token, str) else None


def _utc(epoch_seconds: int) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, tz=UTC)


routes: list[BaseRoute] = [
    resource("/auth/session", {"POST": create_session, "DELETE": end_session}),
]
