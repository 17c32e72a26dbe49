"""`VolcengineAuth`: the signing steps of `signing.py` as an httpx auth flow.

httpx re-enters an auth flow on every send, so each resend gets a fresh X-Date and signature. The flow first
drops any X-Date / X-Content-Sha256 / Authorization / X-Security-Token left from an earlier attempt, so
signing the same request twice gives the same headers as signing it once.

Header spelling (decided here, see signing.md step 4): the SDK signs `Host`, `Content-Type` and `Content-Md5`
only when spelled exactly so, and it always spells them so itself. httpx spells its own `Host` correctly, but
a caller (or HTTP/2 machinery) may hand us `content-type` or `host`. We therefore present those three names to
the signer in the SDK's spelling, whatever their spelling on the request, so a JSON POST is signed over
`content-type;host;x-content-sha256;x-date` exactly as the SDK signs it. `X-` headers keep the caller's
spelling from `request.headers.raw`: a lower-case `x-foo` is not signed, as with the SDK.

A client signs every poll, so `sign` is kept cheap: the signing key, canonical path and query are cached
by `signing.Signer`, X-Date is formatted once per second, and the request's headers are read in one pass.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Generator, Sequence

import httpx

from .clock import Clock, SystemClock
from .signing import Signer, format_x_date

__all__ = ["VolcengineAuth"]

log = logging.getLogger(__name__)

_STALE = ("X-Date", "X-Content-Sha256", "Authorization", "X-Security-Token")
_STALE_LOWER = frozenset(name.lower() for name in _STALE)
_SDK_SPELLING = {"host": "Host", "content-type": "Content-Type", "content-md5": "Content-Md5"}


def _header_pairs(request: httpx.Request) -> tuple[list[tuple[str, str]], bool]:
    """The request's headers with their wire spelling, except the three fixed names in the SDK's spelling;
    and whether any of them is left from an earlier signing."""
    raw = request.headers.raw
    try:  # what httpx's `Headers.encoding` finds first, without its second pass over every header
        decoded = [(name.decode("ascii"), value.decode("ascii")) for name, value in raw]
    except UnicodeDecodeError:
        encoding = request.headers.encoding
        decoded = [(name.decode(encoding), value.decode(encoding)) for name, value in raw]
    pairs: list[tuple[str, str]] = []
    stale = False
    for name, value in decoded:
        lower = name.lower()
        stale = stale or lower in _STALE_LOWER
        pairs.append((_SDK_SPELLING.get(lower, name), value))
    return pairs, stale


class VolcengineAuth(httpx.Auth):
    """Signs every request sent through an httpx client with a Volcengine access key."""

    requires_request_body = True

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        region: str,
        service: str,
        session_token: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not access_key or not secret_key:
            raise ValueError("access_key and secret_key are required")
        self.access_key = access_key
        self.region = region
        self.service = service
        self._session_token = session_token or None
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._signer = Signer(access_key, secret_key, region=region, service=service)
        self._second = math.nan
        self._x_date = ""

    def __repr__(self) -> str:
        masked = f"{self.access_key[:4]}…" if len(self.access_key) > 4 else "…"
        return (
            f"VolcengineAuth(access_key={masked!r}, region={self.region!r}, service={self.service!r}, "
            f"session_token={'set' if self._session_token else None})"
        )

    def x_date(self) -> str:
        """X-Date for the clock's current second (formatted once per second)."""
        second = math.floor(self.clock.now())
        if second != self._second:
            self._second, self._x_date = second, format_x_date(second)
        return self._x_date

    def sign(self, request: httpx.Request) -> None:
        """Set X-Date, X-Content-Sha256, (X-Security-Token) and Authorization on `request` in place."""
        headers = request.headers
        pairs, stale = _header_pairs(request)
        if stale:
            for name in _STALE:
                if name in headers:
                    del headers[name]
            pairs = [pair for pair in pairs if pair[0].lower() not in _STALE_LOWER]
        added = self._added(request.method, request.url.path, request.url.query.decode("ascii"), pairs,
                            request.content)
        for name, value in added:
            headers[name] = value

    def signing_headers(
        self, method: str, path: str, query: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> list[tuple[str, str]]:
        """The headers `sign` would add to a request with these headers (wire spelling, `Host` among them:
        it is signed), this decoded path and wire query and body; for senders that build no httpx.Request.
        """
        pairs = [(_SDK_SPELLING.get(name.lower(), name), value) for name, value in headers]
        return self._added(method, path, query, pairs, body)

    def _added(
        self, method: str, path: str, query: str, pairs: list[tuple[str, str]], body: bytes
    ) -> list[tuple[str, str]]:
        """X-Date, X-Content-Sha256, (X-Security-Token), Authorization for headers in the SDK's spelling."""
        x_date = self.x_date()
        payload_hash = hashlib.sha256(body).hexdigest()
        added = [("X-Date", x_date), ("X-Content-Sha256", payload_hash)]
        if self._session_token:
            added.append(("X-Security-Token", self._session_token))
        authorization = self._signer.authorization(
            method=method, path=path, query=query, headers=pairs + added, x_date=x_date,
            payload_hash=payload_hash,
        )
        added.append(("Authorization", authorization))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("signed %s %s at %s", method, path, x_date)
        return added

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request
