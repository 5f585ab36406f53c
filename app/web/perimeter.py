"""The middleware every request passes before routing, outermost first.

1. Trusted proxies (LITETASK_TRUSTED_PROXIES; none by default, and then no layer at all):
   when the connection comes from one of them, uvicorn's ProxyHeadersMiddleware rewrites
   the scope's `scheme` from X-Forwarded-Proto and its `client` from X-Forwarded-For (the
   nearest address that is not itself a trusted proxy). Everything after it, the Secure
   cookie, HSTS, the login throttle and per-client limits, reads request.url.scheme and
   request.client only. Forwarded headers from anyone else are ignored.
2. `Perimeter`, one pure-ASGI layer: the Host allowlist (LITETASK_ALLOWED_HOSTS; localhost
   names by default on loopback), which defeats DNS rebinding, then authentication and
   cross-site checks (app/web/auth.py).

`Perimeter` is on every request's path, so it does no per-request work it can skip: a Host
header naming an allowed host exactly (with or without a port) passes on a set lookup, and
anything else goes through Starlette's TrustedHostMiddleware, whose answer is the rule.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.config import Settings
from app.web.auth import Admission


class Perimeter:
    """The Host allowlist, then Admission (app/web/auth.py), in one layer."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        hosts = [host.lower() for host in settings.host_allowlist()]
        self.admit = Admission(app, settings)
        self.allow_any = "*" in hosts
        self.exact = frozenset(host for host in hosts if not host.startswith("*"))
        self.by_the_rule = TrustedHostMiddleware(
            self.admit, allowed_hosts=hosts, www_redirect=False
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allow_any or self._plainly_allowed(scope):
            await self.admit(scope, receive, send)
        else:
            await self.by_the_rule(scope, receive, send)

    def _plainly_allowed(self, scope: Scope) -> bool:
        """The first Host header is an exact allowlist entry, optionally with `:port`."""
        for name, value in scope.get("headers", ()):
            if name == b"host":
                host = value.decode("latin-1").lower()
                if host in self.exact:
                    return True
                head, _, port = host.rpartition(":")
                return head in self.exact and port.isascii() and port.isdigit()
        return False


def perimeter(settings: Settings) -> list[Middleware]:
    stack: list[Middleware] = []
    if settings.trusted_proxies:
        trusted = "*" if settings.trusted_proxies == ("*",) else list(settings.trusted_proxies)
        stack.append(Middleware(ProxyHeadersMiddleware, trusted_hosts=trusted))
    stack.append(Middleware(Perimeter, settings=settings))
    return stack
