"""Cross-site request forgery: which unsafe requests a browser may have been tricked into.

A request is cross-site when the browser says so: `Sec-Fetch-Site` other than
`same-origin` or `none` (a user typing or bookmarking), or else an `Origin` header that is
not this service's own origin (scheme, host and port of the request). `same-site` is
refused too: the dashboard is always same-origin, and a sibling subdomain is another
party. A request with neither header is not from a browser that could be tricked (or from
one too old to send them; the JSON rule below covers those).

Writes that ride on a session cookie must also be `application/json`: no web page can send
that cross-origin without a CORS preflight, which this service never approves.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_ORIGIN_SITES = frozenset({"same-origin", "none"})


def is_unsafe(conn: HTTPConnection) -> bool:
    return conn.scope["method"] not in SAFE_METHODS


def cross_site(conn: HTTPConnection) -> str | None:
    """Why the browser says this request comes from another site; None when it does not."""
    fetch_site = conn.headers.get("sec-fetch-site")
    if fetch_site is not None:
        if fetch_site.lower() in SAME_ORIGIN_SITES:
            return None
        return f"Sec-Fetch-Site: {fetch_site}"
    origin = conn.headers.get("origin")
    if origin is None or origin.lower() == own_origin(conn):
        return None
    return f"Origin: {origin}"


def own_origin(conn: HTTPConnection) -> str:
    """`scheme://host[:port]` as a browser would write this request's origin (the scheme
    behind a trusted proxy is the one the browser used)."""
    host = conn.headers.get("host", "").lower()
    scheme = conn.url.scheme
    default = ":443" if scheme == "https" else ":80"
    return f"{scheme}://{host.removesuffix(default)}"


def is_json(conn: HTTPConnection) -> bool:
    content_type = conn.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")
