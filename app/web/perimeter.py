"""The middleware every request passes before routing, outermost first.

1. Trusted proxies (LITETASK_TRUSTED_PROXIES; none by default): when the connection comes
   from one of them, uvicorn's ProxyHeadersMiddleware rewrites the scope's `scheme` from
   X-Forwarded-Proto and its `client` from X-Forwarded-For (the nearest address that is
   not itself a trusted proxy). Everything after it, the Secure cookie, HSTS, the login
   throttle and per-client limits, reads request.url.scheme and request.client only.
   Forwarded headers from anyone else are ignored.
2. The Host allowlist (Starlette's TrustedHostMiddleware, LITETASK_ALLOWED_HOSTS): defeats
   DNS rebinding; localhost names by default on loopback.
3. Authentication and cross-site checks (app/web/auth.py).
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.config import Settings
from app.web.auth import AuthMiddleware


def perimeter(settings: Settings) -> list[Middleware]:
    stack: list[Middleware] = []
    if settings.trusted_proxies:
        trusted = "*" if settings.trusted_proxies == ("*",) else list(settings.trusted_proxies)
        stack.append(Middleware(ProxyHeadersMiddleware, trusted_hosts=trusted))
    hosts = list(settings.host_allowlist())
    stack.append(Middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False))
    stack.append(Middleware(AuthMiddleware))
    return stack
