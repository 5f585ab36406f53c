"""Browser sessions: signed cookies `<version>.<expiry>.<nonce>.<MAC>` that can be ended.

The MAC (HMAC-SHA256 under a key derived from the API token, never the token itself) covers
everything before it and is checked first; only a value the service signed is then parsed,
and strictly (ASCII digits of bounded length), so no cookie can make parsing fail. `version`
is the service's session version, kept in the database (service_state) and cached here:
ending sessions bumps it, which ends every session at once, also across restarts; a new API
token ends them too, as it changes the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time

from starlette.requests import HTTPConnection

from app.config import Settings
from app.db.service_state import SESSION_VERSION_KEY, BumpCounter, ReadCounter
from app.db.writer import GroupCommitWriter

VERSION_KEY = SESSION_VERSION_KEY
PLAIN_COOKIE = "litetask_session"
# Browsers keep a __Host- cookie only if it is Secure, has Path=/ and no Domain: no
# subdomain or plain-http page can plant or overwrite it.
SECURE_COOKIE = "__Host-litetask_session"
MAX_COOKIE_CHARS = 128
PAYLOAD = re.compile(r"(?P<version>[0-9]{1,18})\.(?P<expires>[0-9]{1,12})\.[A-Za-z0-9_-]{16}")


class SessionSigner:
    """Signs and verifies session values for one API token."""

    def __init__(self, token: str) -> None:
        self._key = hashlib.sha256(b"litetask-session\0" + token.encode()).digest()

    def issue(self, version: int, expires: int) -> str:
        payload = f"{version}.{expires}.{secrets.token_urlsafe(12)}"
        return f"{payload}.{self._sign(payload)}"

    def read(self, value: str) -> tuple[int, int] | None:
        """(version, expiry) of a value this signer made; None for anything else."""
        if len(value) > MAX_COOKIE_CHARS or not value.isascii():
            return None
        payload, dot, mac = value.rpartition(".")
        if not dot or not hmac.compare_digest(mac.encode(), self._sign(payload).encode()):
            return None
        match = PAYLOAD.fullmatch(payload)
        if match is None:
            return None
        return int(match["version"]), int(match["expires"])

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Sessions:
    """The sessions of one running service: issue, check, and end them all."""

    def __init__(self, signer: SessionSigner, ttl: int, version: int, writer: GroupCommitWriter):
        self._signer, self._ttl, self._writer = signer, ttl, writer
        self.version = version

    @classmethod
    async def open(cls, token: str, ttl: int, writer: GroupCommitWriter) -> Sessions:
        version = await writer.run(ReadCounter(VERSION_KEY))
        return cls(SessionSigner(token), ttl, version, writer)

    def issue(self) -> tuple[str, int]:
        """A new cookie value and its expiry (epoch seconds)."""
        expires = int(time.time()) + self._ttl
        return self._signer.issue(self.version, expires), expires

    def valid(self, value: str) -> bool:
        read = self._signer.read(value)
        if read is None:
            return False
        version, expires = read
        return version == self.version and expires >= time.time()

    async def end_all(self) -> None:
        """Every cookie issued so far stops working, durably."""
        self.version = await self._writer.run(BumpCounter(VERSION_KEY))


def secure_cookie(conn: HTTPConnection, settings: Settings) -> bool:
    """Whether this request's session cookie is Secure (and __Host- named): whenever the
    service is reachable beyond loopback, or the request came over https (as told by a
    trusted proxy, see app/web/perimeter.py)."""
    return not settings.on_loopback or conn.url.scheme == "https"


def cookie_name(secure: bool) -> str:
    return SECURE_COOKIE if secure else PLAIN_COOKIE
