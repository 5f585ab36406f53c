"""Security headers on every response: a pure ASGI middleware wrapped around the whole app,
outside Starlette's own error handling, so routes, error handlers, the auth middleware,
static files, event streams and even a crash's 500 carry them.

`X-Content-Type-Options: nosniff` always. `Strict-Transport-Security` only when the request
arrived over https (the ASGI scope's scheme, which trusted proxy headers may set): a browser
must never be told to pin HTTPS by a plain-http answer it cannot trust.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NOSNIFF = (b"x-content-type-options", b"nosniff")
HSTS = (b"strict-transport-security", b"max-age=31536000")
# What a response gets over https and over http, built once: the headers added, and the
# names whose own value from the app they replace.
SECURE = ((NOSNIFF, HSTS), frozenset({NOSNIFF[0], HSTS[0]}))
PLAIN = ((NOSNIFF,), frozenset({NOSNIFF[0]}))


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Read the scheme now: a proxy-headers middleware inside may have set it.
                extra, names = SECURE if scope.get("scheme") == "https" else PLAIN
                kept = [h for h in message.get("headers", ()) if h[0].lower() not in names]
                message = {**message, "headers": [*kept, *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
