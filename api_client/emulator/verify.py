"""An independent Volcengine V4 verifier, stdlib only, following signing.md's "Verifier recipe".

It deliberately shares no code with ``api_client.signing``/``api_client.auth``: the emulator is only a useful
check of the client if two separate readings of signing.md agree. It works from what a server sees: the
decoded path, the raw wire query (insertion order, ``+`` for spaces), headers in whatever case the transport
delivers them, and the raw body bytes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

ALGORITHM = "HMAC-SHA256"
_UNRESERVED = "-_.~"
_X_DATE_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class VerifyResult:
    """The verdict; on failure the gateway CodeN/Code/HTTP status to answer with.

    ``canonical_request`` and ``string_to_sign`` are what the verifier built (empty if it got no
    that far), for tests to compare against a signer; they are never put in a response.
    """

    ok: bool
    code_n: int = 0
    code: str = ""
    message: str = ""
    http_status: int = 200
    canonical_request: str = ""
    string_to_sign: str = ""


def _fail(code_n: int, code: str, http_status: int, message: str) -> VerifyResult:
    return VerifyResult(False, code_n, code, message, http_status)


def _encode(text: str, safe: str = _UNRESERVED) -> str:
    return quote(text, safe=safe, encoding="utf-8")


def canonicalise_query(query_string: str) -> str:
    """Decode the wire query (``+`` is a space) and rebuild signing.md step 7 from the pairs."""
    pairs = parse_qsl(query_string, keep_blank_values=True, encoding="utf-8", errors="strict")
    ordered = sorted(pairs, key=lambda kv: kv[0])  # stable: repeated keys keep their wire order
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in ordered)


def canonicalise_path(path: str) -> str:
    return _encode(path or "/", safe="/" + _UNRESERVED)


def _header_lookup(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, str] = {}
    for name, value in items:
        found.setdefault(name.lower(), value)  # first one wins, as a server reading one header would
    return found


def _host_for_signing(host: str) -> str:
    name, sep, port = host.rpartition(":")
    if sep and port in ("80", "443") and name:
        return name
    return host


def _parse_authorization(value: str) -> dict[str, str] | None:
    prefix = ALGORITHM + " "
    if not value.startswith(prefix):
        return None
    fields: dict[str, str] = {}
    for part in value[len(prefix) :].split(","):
        key, sep, item = part.strip().partition("=")
        if sep:
            fields[key] = item
    return fields


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def verify_request(
    method: str,
    path: str,
    query_string: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes,
    access_key: str,
    secret_key: str,
    now: float,
    *,
    region: str = "cn-north-1",
    service: str = "cv",
    max_skew: float = 900.0,
) -> VerifyResult:
    """Check one request's signature the way the gateway does, in the gateway's order of checks."""
    lookup = _header_lookup(headers)
    authorization = lookup.get("authorization")
    if not authorization:
        return _fail(100003, "MissingAuthenticationToken", 401, "Request is missing Authentication Token.")
    fields = _parse_authorization(authorization)
    if fields is None or "Credential" not in fields or "SignedHeaders" not in fields:
        return _fail(100004, "MissingRequestInfo", 400, "The request is missing Authorization information.")
    if not fields.get("Signature"):
        return _fail(100005, "MissingSignature", 401, "The request is missing signature.")
    credential = fields["Credential"].split("/")
    if len(credential) != 5 or credential[4] != "request":
        return _fail(100004, "MissingRequestInfo", 400, "The request is missing Credential information.")
    request_ak, scope_date, scope_region, scope_service = credential[:4]
    if not hmac.compare_digest(request_ak.encode(), access_key.encode()):
        message = f"The accesskey [{request_ak}] included in the request is invalid."
        return _fail(100009, "InvalidAccessKey", 401, message)

    x_date = lookup.get("x-date")
    if not x_date:
        return _fail(100004, "MissingRequestInfo", 400, "The request is missing X-Date information.")
    try:
        signed_at = datetime.strptime(x_date, _X_DATE_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return _fail(100006, "InvalidTimestamp", 403, "The Signature of the request is expired.")
    if abs(now - signed_at) > max_skew:
        return _fail(100006, "InvalidTimestamp", 403, "The Signature of the request is expired.")

    mismatch = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your Secret Access Key and signing method."
    )
    if (scope_date, scope_region, scope_service) != (x_date[:8], region, service):
        return _fail(100010, "SignatureDoesNotMatch", 401, mismatch)
    body_hash = hashlib.sha256(body).hexdigest()
    claimed_hash = lookup.get("x-content-sha256")
    if claimed_hash is not None and not hmac.compare_digest(claimed_hash.encode(), body_hash.encode()):
        return _fail(100010, "SignatureDoesNotMatch", 401, mismatch)

    signed_names = fields["SignedHeaders"].split(";")
    header_lines = []
    for name in signed_names:
        value = lookup.get(name)
        if value is None:
            return _fail(100010, "SignatureDoesNotMatch", 401, mismatch)
        header_lines.append(f"{name}:{_host_for_signing(value) if name == 'host' else value}\n")
    try:
        query = canonicalise_query(query_string)
    except UnicodeDecodeError:
        return _fail(100010, "SignatureDoesNotMatch", 401, mismatch)
    canonical_request = "\n".join(
        [
            method.upper(),
            canonicalise_path(path),
            query,
            "".join(header_lines),
            fields["SignedHeaders"],
            body_hash,
        ]
    )
    scope = f"{scope_date}/{scope_region}/{scope_service}/request"
    string_to_sign = "\n".join(
        [ALGORITHM, x_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    key = secret_key.encode("utf-8")
    for part in (scope_date, scope_region, scope_service, "request"):
        key = _hmac(key, part)
    expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), fields["Signature"].encode()):
        return VerifyResult(
            False, 100010, "SignatureDoesNotMatch", mismatch, 401, canonical_request, string_to_sign
        )
    return VerifyResult(True, canonical_request=canonical_request, string_to_sign=string_to_sign)
