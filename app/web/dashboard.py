"""The live dashboard: one static page at `/` and `/dashboard`, its assets under `/static/`.

The page holds no data and needs no auth (app/web/auth.py lets these paths through); its
script reads everything from the API with the browser's session cookie. Responses forbid
inline script, framing and cross-origin connections, and the page is revalidated on every
load so a new version shows at once.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from app.web.routing import resource

STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGE = STATIC_DIR / "dashboard.html"
PAGE_PATHS = ("/", "/dashboard")
STATIC_PREFIX = "/static"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def dashboard_page(_request: Request) -> Response:
    """The dashboard's HTML, the same for everyone."""
    return FileResponse(PAGE, media_type="text/html", headers=SECURITY_HEADERS)


routes: list[BaseRoute] = [
    *(resource(path, {"GET": dashboard_page}) for path in PAGE_PATHS),
    Mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static"),
]
