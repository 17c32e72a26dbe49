"""Volcengine HMAC-SHA256 (V4-style) signing as pure steps, one function per `signing-vectors.json` field.

This follows the official SDK (`volcengine==1.0.229`, `SignerV4`), not the public prose, where they differ:
header values are never trimmed, header names are chosen by their exact spelling, and the query is sorted by
key only (a repeated key keeps its values in the order given). The vectors, with every intermediate
value, are in tests/api_client/data/signing-vectors.json.

No HTTP library is imported here, so the steps can be checked against the vectors on their own; `auth.py`
adapts an httpx request to them. Nothing here logs: the inputs include the secret key and the session token.

`Signer` is the same steps for a client that signs request after request with one key: what repeats is
computed once (kSigning once per UTC day, the canonical path and query once per distinct URL), and the
HMACs use `hmac.digest`, OpenSSL's one-shot call. Tests hold it equal to `sign_request`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

__all__ = [
    "ALGORITHM",
    "SIGNED_EXACT_NAMES",
    "SignedRequest",
    "Signer",
    "SigningKey",
    "authorization_header",
    "body_sha256",
    "canonical_header_block",
    "canonical_headers",
    "canonical_path",
    "canonical_query",
    "canonical_request",
    "credential_scope",
    "format_x_date",
    "hashed_canonical_request",
    "headers_to_sign",
    "percent_encode",
    "sign_request",
    "signature",
    "signed_headers",
    "signing_key",
    "string_to_sign",
]

ALGORITHM = "HMAC-SHA256"
#: Header names signed only when spelled exactly like this (case-sensitive, as the SDK does).
SIGNED_EXACT_NAMES = frozenset({"Content-Type", "Content-Md5", "Host"})
_UNRESERVED = "-_.~"  # with A-Z a-z 0-9, the only characters left unescaped

Pairs = Sequence[tuple[str, str]]


def percent_encode(text: str, *, keep_slash: bool = False) -> str:
    """UTF-8 percent-encoding with upper-case hex; space is %20, never '+'."""
    return quote(text, safe=_UNRESERVED + ("/" if keep_slash else ""))


def body_sha256(body: bytes | str) -> str:
    """Lower-case hex SHA-256 of the exact body bytes (a str is UTF-8 encoded)."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    return hashlib.sha256(data).hexdigest()


def canonical_path(path: str) -> str:
    """The decoded path, percent-encoded except for '/'; empty becomes '/'."""
    return percent_encode(path or "/", keep_slash=True)


def canonical_query(query: Pairs) -> str:
    """`k=v` pairs sorted by key (code points; stable, so a repeated key keeps its value order)."""
    ordered = sorted(query, key=lambda pair: pair[0])
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in ordered)


def _is_signed_name(name: str) -> bool:
    return name in SIGNED_EXACT_NAMES or name.startswith("X-")


def _host_for_signing(value: str) -> str:
    """Drop a :80 or :443 port (whatever the scheme); any other port is part of the signed value."""
    if ":" in value:
        parts = value.split(":")
        if parts[1] in ("80", "443"):
            return parts[0]
    return value


def headers_to_sign(headers: Pairs) -> dict[str, str]:
    """Lower-cased name -> value of the headers the SDK signs, chosen by the caller's spelling.

    Only `Content-Type`, `Content-Md5`, `Host` spelled exactly so, and names starting with `X-`, are signed.
    Values are kept as given (no trimming). If two signed headers share a lower-cased name the later wins,
    as in the SDK's dict.
    """
    chosen: dict[str, str] = {}
    for name, value in headers:
        if _is_signed_name(name):
            chosen[name.lower()] = value
    if "host" in chosen:
        chosen["host"] = _host_for_signing(chosen["host"])
    return chosen


def canonical_headers(headers: Pairs) -> str:
    """`name:value\\n` for each signed header, names lower-cased and sorted by code point."""
    chosen = headers_to_sign(headers)
    return "".join(f"{name}:{chosen[name]}\n" for name in sorted(chosen))


def signed_headers(headers: Pairs) -> str:
    """The sorted lower-cased names of the signed headers, joined by ';'."""
    return ";".join(sorted(headers_to_sign(headers)))


def canonical_header_block(headers: Pairs) -> tuple[str, str]:
    """(`canonical_headers`, `signed_headers`) from one pass over the headers."""
    chosen = headers_to_sign(headers)
    names = sorted(chosen)
    return "".join(f"{name}:{chosen[name]}\n" for name in names), ";".join(names)


def canonical_request(
    method: str,
    canonical_path: str,
    canonical_query: str,
    canonical_headers: str,
    signed_headers: str,
    body_sha256: str,
) -> str:
    """The six canonical parts joined by newlines (the header block already ends in one)."""
    return "\n".join(
        [method, canonical_path, canonical_query, canonical_headers, signed_headers, body_sha256]
    )


def hashed_canonical_request(canonical_request: str) -> str:
    return hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()


def credential_scope(date: str, region: str, service: str) -> str:
    """`YYYYMMDD/region/service/request`; `date` may be the full X-Date, only its first 8 characters count."""
    return f"{date[:8]}/{region}/{service}/request"


def string_to_sign(x_date: str, credential_scope: str, canonical_request: str) -> str:
    return "\n".join([ALGORITHM, x_date, credential_scope, hashed_canonical_request(canonical_request)])


@dataclass(frozen=True)
class SigningKey:
    """The HMAC chain; `k_signing` signs. Secret material: keep it out of logs (repr hides it)."""

    k_date: bytes = field(repr=False)
    k_region: bytes = field(repr=False)
    k_service: bytes = field(repr=False)
    k_signing: bytes = field(repr=False)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.digest(key, message.encode("utf-8"), "sha256")


def signing_key(secret_key: str, date: str, region: str, service: str) -> SigningKey:
    """kDate = HMAC(SK, YYYYMMDD) (no prefix, unlike AWS), then region, service and the literal `request`."""
    k_date = _hmac(secret_key.encode("utf-8"), date[:8])
    k_region = _hmac(k_date, region)
    k_service = _hmac(k_region, service)
    return SigningKey(k_date, k_region, k_service, _hmac(k_service, "request"))


def signature(key: SigningKey | bytes, string_to_sign: str) -> str:
    """Lower-case hex HMAC-SHA256 of the string to sign under kSigning."""
    k_signing = key.k_signing if isinstance(key, SigningKey) else key
    return hmac.digest(k_signing, string_to_sign.encode("utf-8"), "sha256").hex()


def authorization_header(access_key: str, credential_scope: str, signed_headers: str, signature: str) -> str:
    return (
        f"{ALGORITHM} Credential={access_key}/{credential_scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )


def format_x_date(epoch: float) -> str:
    """UTC `YYYYMMDD'T'HHMMSS'Z'` (seconds truncated, as strftime does)."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class SignedRequest:
    """Every intermediate of one signing, named like the vector fields. Holds no secret key."""

    x_date: str
    body_sha256: str
    canonical_path: str
    canonical_query: str
    canonical_headers: str = field(repr=False)  # holds X-Security-Token when there is one
    signed_headers: str
    canonical_request: str = field(repr=False)
    hashed_canonical_request: str
    credential_scope: str
    string_to_sign: str
    signing_key: SigningKey = field(repr=False)
    signature: str = field(repr=False)  # with the headers, replayable for ~15 minutes
    authorization: str = field(repr=False)


def sign_request(
    *,
    method: str,
    path: str,
    query: Pairs,
    headers: Pairs,
    body: bytes | str,
    access_key: str,
    secret_key: str,
    region: str,
    service: str,
    x_date: str,
    payload_hash: str | None = None,
) -> SignedRequest:
    """All steps 6-13 for a request whose headers already include X-Date and X-Content-Sha256.

    The caller sets those headers (and X-Security-Token) first, because the SDK signs them as `X-` headers.
    A caller that already hashed the body for X-Content-Sha256 passes `payload_hash`, so an 8 MB submit
    body is hashed once, not twice.
    """
    payload_hash = payload_hash or body_sha256(body)
    c_path, c_query = canonical_path(path), canonical_query(query)
    c_headers, s_headers = canonical_header_block(headers)
    c_request = canonical_request(method, c_path, c_query, c_headers, s_headers, payload_hash)
    scope = credential_scope(x_date, region, service)
    to_sign = string_to_sign(x_date, scope, c_request)
    key = signing_key(secret_key, x_date, region, service)
    sig = signature(key, to_sign)
    return SignedRequest(
        x_date=x_date,
        body_sha256=payload_hash,
        canonical_path=c_path,
        canonical_query=c_query,
        canonical_headers=c_headers,
        signed_headers=s_headers,
        canonical_request=c_request,
        hashed_canonical_request=hashed_canonical_request(c_request),
        credential_scope=scope,
        string_to_sign=to_sign,
        signing_key=key,
        signature=sig,
        authorization=authorization_header(access_key, scope, s_headers, sig),
    )


class Signer:
    """`sign_request`'s Authorization for one credential, with the repeating work done once.

    kSigning depends only on the date, so it is kept for the current UTC day (one key: a client signs
    with the clock, and the date moves forward). The canonical path and query depend only on the URL, and
    a client talks to a handful of URLs, so they are kept per (path, wire query), up to `MAX_TARGETS`.
    """

    MAX_TARGETS = 64

    def __init__(self, access_key: str, secret_key: str, *, region: str, service: str) -> None:
        self.access_key = access_key
        self._secret = secret_key.encode("utf-8")
        self.region = region
        self.service = service
        self._date = ""
        self._k_signing = b""
        self._targets: dict[tuple[str, str], tuple[str, str]] = {}

    def __repr__(self) -> str:
        return f"Signer(region={self.region!r}, service={self.service!r})"

    def k_signing(self, x_date: str) -> bytes:
        """kSigning for the date of `x_date` (computed once per date)."""
        date = x_date[:8]
        if date != self._date:
            key = self._secret
            for part in (date, self.region, self.service, "request"):
                key = hmac.digest(key, part.encode("utf-8"), "sha256")
            self._date, self._k_signing = date, key
        return self._k_signing

    def canonical_target(self, path: str, query: str) -> tuple[str, str]:
        """(canonical path, canonical query) of a decoded path and a wire query string (`a=1&b=x+y`)."""
        key = (path, query)
        target = self._targets.get(key)
        if target is None:
            pairs = parse_qsl(query, keep_blank_values=True)
            target = (canonical_path(path), canonical_query(pairs))
            if len(self._targets) >= self.MAX_TARGETS:
                self._targets.clear()
            self._targets[key] = target
        return target

    def authorization(
        self, *, method: str, path: str, query: str, headers: Pairs, x_date: str, payload_hash: str
    ) -> str:
        """The Authorization header; `headers` must hold X-Date and X-Content-Sha256 (see sign_request)."""
        c_path, c_query = self.canonical_target(path, query)
        c_headers, s_headers = canonical_header_block(headers)
        c_request = "\n".join((method, c_path, c_query, c_headers, s_headers, payload_hash))
        scope = f"{x_date[:8]}/{self.region}/{self.service}/request"
        hashed = hashlib.sha256(c_request.encode("utf-8")).hexdigest()
        to_sign = f"{ALGORITHM}\n{x_date}\n{scope}\n{hashed}"
        sig = hmac.digest(self.k_signing(x_date), to_sign.encode("utf-8"), "sha256").hex()
        return authorization_header(self.access_key, scope, s_headers, sig)
