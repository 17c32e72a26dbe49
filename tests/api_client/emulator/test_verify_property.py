"""Two independent readings of signing.md agree: whatever api_client.signing signs, the emulator verifies.

Random queries (unicode, repeated keys, reserved characters, both wire spellings of a space), paths,
extra X- headers and bodies are signed with ``api_client.signing`` and checked by ``verify_request`` as a
server would see them (lower-cased header names, raw wire query). Any mutation must then fail.
"""

from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from api_client import signing
from api_client.emulator.verify import VerifyResult, verify_request

AK, SK = "AKLTproperty", "property/secret=="
NOW = 1_704_067_200.0
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
RESERVED = st.sampled_from([*" !\"#$%&'()*+,/:;=?@[]~-_.", "中", "é", "😀", "%20", "+"])
VALUES = st.one_of(TEXT, st.lists(RESERVED, max_size=6).map("".join))
PAIRS = st.lists(st.tuples(st.one_of(TEXT, RESERVED), VALUES), max_size=6)
HEADER_VALUE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)


class Wire(NamedTuple):
    """A signed request as the server sees it, plus what the signer built."""

    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    signed: signing.SignedRequest


@st.composite
def requests(draw: st.DrawFn) -> Wire:
    query = [("Action", "CVSync2AsyncGetResult"), ("Version", "2022-08-31"), *draw(PAIRS)]
    repeated = draw(st.booleans())
    if repeated and query[2:]:
        query.append((query[2][0], draw(VALUES)))  # a repeated key, values in wire order
    path = "/" + "/".join(draw(st.lists(TEXT.filter(lambda s: "/" not in s), max_size=3)))
    body = draw(st.binary(max_size=200))
    x_date = signing.format_x_date(NOW + draw(st.integers(-890, 890)))
    headers = [
        ("Host", draw(st.sampled_from(["127.0.0.1:8080", "visual.volcengineapi.com:443", "emu:80", "emu"]))),
        ("Content-Type", "application/json"),
        ("X-Date", x_date),
        ("X-Content-Sha256", signing.body_sha256(body)),
    ]
    if draw(st.booleans()):
        headers.append(("X-Custom-Thing", draw(HEADER_VALUE)))
    signed = signing.sign_request(
        method="POST", path=path, query=query, headers=headers, body=body, access_key=AK,
        secret_key=SK, region="cn-north-1", service="cv", x_date=x_date,
    )
    plus_spaces = draw(st.booleans())  # SDK: urlencode (+); httpx-like: %20
    wire_query = urlencode(query) if plus_spaces else urlencode(query, quote_via=quote)
    wire_headers = [(name.lower(), value) for name, value in headers]
    wire_headers.append(("authorization", signed.authorization))
    wire_headers.append(("user-agent", "unsigned/1.0"))
    return Wire(path, wire_query, wire_headers, body, signed)


def _verify(request: Wire, **changes: Any) -> VerifyResult:
    args: dict[str, Any] = {
        "method": "POST", "path": request.path, "query_string": request.query, "headers": request.headers,
        "body": request.body, "access_key": AK, "secret_key": SK, "now": NOW,
    }
    args.update(changes)
    return verify_request(**args)


@settings(max_examples=150, deadline=None)
@given(requests())
def test_signed_requests_verify(request: Wire) -> None:
    result = _verify(request)
    assert result.ok, (result, request.signed)
    assert result.canonical_request == request.signed.canonical_request


@settings(max_examples=100, deadline=None)
@given(
    requests(),
    st.sampled_from(["body", "query", "path", "secret", "header"]),
    st.binary(min_size=1, max_size=4),
)
def test_any_mutation_fails(request: Wire, target: str, noise: bytes) -> None:
    extra = noise.hex()
    options: dict[str, dict[str, Any]] = {
        "body": {"body": request.body + noise},
        "query": {"query_string": f"{request.query}&z{extra}=1"},
        "path": {"path": request.path + extra},
        "secret": {"secret_key": SK + extra},
        "header": {"headers": [(n, v + extra if n == "content-type" else v) for n, v in request.headers]},
    }
    assert not _verify(request, **options[target]).ok
