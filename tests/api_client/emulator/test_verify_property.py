"""Two independent readings of signing.md agree: whatever api_client.signing signs, the emulator verifies.

Random queries (unicode, repeated keys, reserved characters, both wire spellings of a space), paths,
extra X- headers and bodies are signed with ``api_client.signing`` and checked by ``verify_request`` as a
server would see them (lower-cased header names, raw wire query). Any mutation must then fail.
"""

from urllib.parse import quote, urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from api_client import signing
from api_client.emulator.verify import verify_request

AK, SK = "AKLTproperty", "property/secret=="
NOW = 1_704_067_200.0
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
RESERVED = st.sampled_from([*" !\"#$%&'()*+,/:;=?@[]~-_.", "中", "é", "😀", "%20", "+"])
VALUES = st.one_of(TEXT, st.lists(RESERVED, max_size=6).map("".join))
PAIRS = st.lists(st.tuples(st.one_of(TEXT, RESERVED), VALUES), max_size=6)
HEADER_VALUE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, object]:
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
    return {"path": path, "query": wire_query, "headers": wire_headers, "body": body, "signed": signed}


def _verify(request: dict[str, object], **changes: object) -> object:
    args = {
        "method": "POST", "path": request["path"], "query_string": request["query"],
        "headers": request["headers"], "body": request["body"], "access_key": AK, "secret_key": SK,
        "now": NOW,
    }
    args.update(changes)
    return verify_request(**args)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(requests())
def test_signed_requests_verify(request: dict[str, object]) -> None:
    result = _verify(request)
    signed = request["signed"]
    assert result.ok, (result, signed)  # type: ignore[attr-defined]
    assert result.canonical_request == signed.canonical_request  # type: ignore[attr-defined]


@settings(max_examples=100, deadline=None)
@given(
    requests(),
    st.sampled_from(["body", "query", "path", "secret", "header"]),
    st.binary(min_size=1, max_size=4),
)
def test_any_mutation_fails(request: dict[str, object], target: str, noise: bytes) -> None:
    extra = noise.hex()
    if target == "body":
        changes: dict[str, object] = {"body": bytes(request["body"]) + noise}  # type: ignore[arg-type]
    elif target == "query":
        changes = {"query_string": f"{request['query']}&z{extra}=1"}
    elif target == "path":
        changes = {"path": str(request["path"]) + extra}
    elif target == "secret":
        changes = {"secret_key": SK + extra}
    else:
        wire: list[tuple[str, str]] = request["headers"]  # type: ignore[assignment]
        changes = {"headers": [(n, v + extra if n == "content-type" else v) for n, v in wire]}
    assert not _verify(request, **changes).ok  # type: ignore[attr-defined]
