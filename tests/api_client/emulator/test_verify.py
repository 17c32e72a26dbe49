"""The independent verifier: the seed vectors pass, and each kind of bad request gets its gateway code."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from api_client.emulator.verify import canonicalise_query, verify_request

from ._support import AK, SUBMIT, EmulatorClient, sign_headers

# The repository's copy of the API documentation's signing vectors.
VECTORS_FILE = Path(__file__).parents[1] / "data" / "signing-vectors.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
VECTOR_TIME = datetime(2024, 1, 1, tzinfo=UTC).timestamp()


def _wire(vector: dict[str, Any]) -> tuple[str, dict[str, str]]:
    query = urlencode([tuple(pair) for pair in vector["query"]])
    headers: dict[str, str] = {**vector["headers_in"], **vector["headers_added_by_signer"]}
    return query, headers


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_seed_vectors_verify_and_rebuild_the_same_canonical_request(vector: dict[str, str]) -> None:
    query, headers = _wire(vector)
    lowered = {name.lower(): value for name, value in headers.items()}  # as an ASGI server delivers them
    result = verify_request(
        vector["method"], vector["path"], query, lowered, vector["body"].encode(),
        vector["access_key"], vector["secret_key"], VECTOR_TIME + 60,
    )
    assert result.ok, result
    assert result.canonical_request == vector["canonical_request"]
    assert result.string_to_sign == vector["string_to_sign"]


def test_canonical_query_of_the_wire_form() -> None:
    vector = VECTORS[2]
    assert canonicalise_query(_wire(vector)[0]) == vector["canonical_query"]


def _v1(**changes: Any) -> dict[str, Any]:
    vector = VECTORS[0]
    query, headers = _wire(vector)
    args: dict[str, Any] = {
        "method": "POST", "path": "/", "query_string": query, "headers": headers,
        "body": vector["body"].encode(), "access_key": vector["access_key"],
        "secret_key": vector["secret_key"], "now": VECTOR_TIME,
    }
    args.update(changes)
    return args


@pytest.mark.parametrize(
    "changes, code_n, http_status",
    [
        ({"access_key": "AKother"}, 100009, 401),
        ({"secret_key": "wrong"}, 100010, 401),
        ({"body": b'{"req_key": "tampered"}'}, 100010, 401),
        ({"query_string": "Action=CVSync2AsyncGetResult&Version=2022-08-31"}, 100010, 401),
        ({"method": "PUT"}, 100010, 401),
        ({"now": VECTOR_TIME + 901}, 100006, 403),
        ({"now": VECTOR_TIME - 901}, 100006, 403),
        ({"headers": {"Host": "visual.volcengineapi.com"}}, 100003, 401),
    ],
)
def test_rejections(changes: dict[str, Any], code_n: int, http_status: int) -> None:
    result = verify_request(**_v1(**changes))
    assert (result.ok, result.code_n, result.http_status) == (False, code_n, http_status)


def test_skew_within_fifteen_minutes_is_accepted() -> None:
    assert verify_request(**_v1(now=VECTOR_TIME + 899)).ok


def test_header_names_in_any_case_and_default_port() -> None:
    query, headers = _wire(VECTORS[2])  # signed for visual.volcengineapi.com:443
    shouted = [(name.upper(), value) for name, value in headers.items()]
    assert verify_request(
        "GET", "/", query, shouted, b"", VECTORS[2]["access_key"], VECTORS[2]["secret_key"], VECTOR_TIME
    ).ok


def test_tampered_signed_header_fails() -> None:
    _, headers = _wire(VECTORS[0])
    headers["Content-Type"] = "text/plain"
    assert verify_request(**_v1(headers=headers)).code_n == 100010


def test_malformed_authorization() -> None:
    _, headers = _wire(VECTORS[0])
    unsigned = headers["Authorization"].split(", Signature=")[0] + ", Signature="
    no_signature = {**headers, "Authorization": unsigned}
    garbage = {**headers, "Authorization": "Bearer abc"}
    missing_date = {k: v for k, v in headers.items() if k != "X-Date"}
    assert verify_request(**_v1(headers=no_signature)).code_n == 100005
    assert verify_request(**_v1(headers=garbage)).code_n == 100004
    assert verify_request(**_v1(headers=missing_date)).code_n == 100004


def test_scope_for_another_region_fails() -> None:
    headers = sign_headers("POST", "h", "/", [("Action", SUBMIT)], b"", now=VECTOR_TIME, region="cn-beijing")
    result = verify_request("POST", "/", "Action=" + SUBMIT, headers, b"", AK, "SKtest", VECTOR_TIME)
    assert result.code_n == 100010


# Through the app: the gateway body shape and statuses.


async def _gateway_error(response_json: dict[str, object]) -> dict[str, object]:
    metadata = response_json["ResponseMetadata"]
    assert isinstance(metadata, dict)
    assert metadata["Service"] == "cv" and metadata["Region"] == "cn-north-1" and metadata["RequestId"]
    error: dict[str, object] = metadata["Error"]
    return error


async def test_app_rejects_wrong_secret_with_gateway_body(emu: EmulatorClient) -> None:
    response = await emu.raw(SUBMIT, b"{}", sk="not-the-secret")
    error = await _gateway_error(response.json())
    assert response.status_code == 401
    assert (error["CodeN"], error["Code"]) == (100010, "SignatureDoesNotMatch")
    assert response.json()["ResponseMetadata"]["Action"] == SUBMIT
    assert not emu.state.tasks


async def test_app_rejects_wrong_access_key(emu: EmulatorClient) -> None:
    response = await emu.raw(SUBMIT, b"{}", ak="AKother")
    assert response.status_code == 401
    assert (await _gateway_error(response.json()))["CodeN"] == 100009


async def test_app_rejects_stale_x_date(emu: EmulatorClient) -> None:
    response = await emu.raw(SUBMIT, b"{}", signed_at=emu.time.now - 16 * 60)
    assert response.status_code == 403
    assert (await _gateway_error(response.json()))["Code"] == "InvalidTimestamp"


async def test_app_rejects_tampered_body(emu: EmulatorClient) -> None:
    response = await emu.raw(SUBMIT, b'{"req_key": "evil"}', signed_body=b'{"req_key": "good"}')
    assert response.status_code == 401
    assert (await _gateway_error(response.json()))["CodeN"] == 100010


async def test_app_rejects_unsigned_request(emu: EmulatorClient) -> None:
    response = await emu.http.post(f"/?Action={SUBMIT}&Version=2022-08-31", content=b"{}")
    assert response.status_code == 401
    assert (await _gateway_error(response.json()))["CodeN"] == 100003


async def test_verification_can_be_switched_off(emu: EmulatorClient) -> None:
    emu.state.config.check_signature = False
    response = await emu.http.post(f"/?Action={SUBMIT}&Version=2022-08-31", content=b"{}")
    assert (response.status_code, response.json()["code"]) == (400, 50204)
