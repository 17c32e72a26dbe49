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
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from urllib.parse import parse_qsl

import httpx

from .clock import Clock, SystemClock
from .signing import body_sha256, format_x_date, sign_request

__all__ = ["VolcengineAuth"]

log = logging.getLogger(__name__)

_STALE = ("X-Date", "X-Content-Sha256", "Authorization", "X-Security-Token")
_SDK_SPELLING = {"host": "Host", "content-type": "Content-Type", "content-md5": "Content-Md5"}


def _header_pairs(request: httpx.Request) -> list[tuple[str, str]]:
    """The request's headers with their wire spelling, except the three fixed names in the SDK's spelling."""
    encoding = request.headers.encoding
    pairs: list[tuple[str, str]] = []
    for raw_name, raw_value in request.headers.raw:
        name = raw_name.decode(encoding)
        pairs.append((_SDK_SPELLING.get(name.lower(), name), raw_value.decode(encoding)))
    return pairs


def _query_pairs(url: httpx.URL) -> list[tuple[str, str]]:
    """The decoded query (the wire form may use '+' and any order; the signer re-canonicalises it)."""
    return parse_qsl(url.query.decode("ascii"), keep_blank_values=True)


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
        self._secret_key = secret_key
        self.region = region
        self.service = service
        self._session_token = session_token or None
        self.clock: Clock = clock if clock is not None else SystemClock()

    def __repr__(self) -> str:
        masked = f"{self.access_key[:4]}…" if len(self.access_key) > 4 else "…"
        return (
            f"VolcengineAuth(access_key={masked!r}, region={self.region!r}, service={self.service!r}, "
            f"session_token={'set' if self._session_token else None})"
        )

    def sign(self, request: httpx.Request) -> None:
        """Set X-Date, X-Content-Sha256, (X-Security-Token) and Authorization on `request` in place."""
        for name in _STALE:
            if name in request.headers:
                del request.headers[name]
        body = request.content
        x_date = format_x_date(self.clock.now())
        request.headers["X-Date"] = x_date
        payload_hash = body_sha256(body)
        request.headers["X-Content-Sha256"] = payload_hash
        if self._session_token:
            request.headers["X-Security-Token"] = self._session_token
        signed = sign_request(
            method=request.method,
            path=request.url.path,
            query=_query_pairs(request.url),
            headers=_header_pairs(request),
            body=body,
            access_key=self.access_key,
            secret_key=self._secret_key,
            region=self.region,
            service=self.service,
            x_date=x_date,
            payload_hash=payload_hash,
        )
        request.headers["Authorization"] = signed.authorization
        log.debug(
            "signed %s %s at %s over %s", request.method, request.url.path, x_date, signed.signed_headers
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request
