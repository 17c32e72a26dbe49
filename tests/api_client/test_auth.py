"""VolcengineAuth on the wire: what httpx actually sends, signed with a frozen clock."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from api_client.auth import VolcengineAuth
from api_client.clock import FakeClock

_REPO_COPY = Path(__file__).parent / "data" / "signing-vectors.json"
_SHARED_SEED = Path(__file__).parents[3] / "shared" / "seed" / "signing-vectors.json"
VECTORS: dict[str, dict[str, Any]] = {
    v["name"]: v
    for v in json.loads((_REPO_COPY if _REPO_COPY.exists() else _SHARED_SEED).read_text("utf-8"))
}
V1 = VECTORS["V1_submit_task_json"]
V2 = VECTORS["V2_get_result_local_emulator_port"]
V3 = VECTORS["V3_get_query_encoding_repeated_key_port443"]
FROZEN = 1_704_067_200.0  # 2024-01-01T00:00:00Z, the vectors' X-Date


def _auth(v: dict[str, Any], clock: FakeClock | None = None, token: str | None = None) -> VolcengineAuth:
    return VolcengineAuth(
        v["access_key"],
        v["secret_key"],
        region=v["region"],
        service=v["service"],
        session_token=token,
        clock=clock or FakeClock(FROZEN),
    )


async def _send(auth: VolcengineAuth, method: str, url: str, **kwargs: Any) -> httpx.Request:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"code": 10000})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth) as client:
        response = await client.request(method, url, **kwargs)
    assert response.status_code == 200
    assert len(seen) == 1, "the flow yields the request exactly once"
    return seen[0]


def _assert_signed_like(request: httpx.Request, v: dict[str, Any]) -> None:
    for name, value in v["headers_added_by_signer"].items():
        assert request.headers[name] == value, name


async def test_v1_wire_authorization_matches_vector() -> None:
    request = await _send(
        _auth(V1),
        "POST",
        "https://visual.volcengineapi.com/",
        params=V1["query"],
        content=V1["body"].encode("utf-8"),
        headers={"Content-Type": "application/json"},
    )
    _assert_signed_like(request, V1)
    assert request.headers["authorization"] == V1["authorization"]


async def test_v2_wire_non_default_port_is_signed() -> None:
    request = await _send(
        _auth(V2),
        "POST",
        "http://127.0.0.1:8080/",
        params=V2["query"],
        content=V2["body"].encode("utf-8"),
        headers={"Content-Type": "application/json"},
    )
    assert request.headers["host"] == "127.0.0.1:8080"
    _assert_signed_like(request, V2)


async def test_v3_wire_get_repeated_keys_and_port_443() -> None:
    request = await _send(
        _auth(V3),
        "GET",
        "https://visual.volcengineapi.com/",
        params=V3["query"],
        headers={"Host": "visual.volcengineapi.com:443"},
    )
    assert request.headers["host"] == "visual.volcengineapi.com:443", "the wire keeps :443"
    _assert_signed_like(request, V3)


async def test_lower_case_content_type_is_signed_in_sdk_spelling() -> None:
    """Decision documented in auth.py: Host/Content-Type are signed whatever their spelling on the request."""
    request = await _send(
        _auth(V1),
        "POST",
        "https://visual.volcengineapi.com/",
        params=V1["query"],
        content=V1["body"].encode("utf-8"),
        headers={"content-type": "application/json"},
    )
    assert request.headers["authorization"] == V1["authorization"]


async def test_json_body_is_hashed_exactly_as_sent() -> None:
    body = {"req_key": "k", "prompt": "中文 prompt", "n": [1, 2]}
    request = await _send(
        _auth(V1), "POST", "https://visual.volcengineapi.com/", params=V1["query"], json=body
    )
    assert request.headers["x-content-sha256"] == hashlib.sha256(request.content).hexdigest()
    assert "SignedHeaders=content-type;host;x-content-sha256;x-date," in request.headers["authorization"]


@pytest.mark.parametrize("token", [None, "sts-token"])
async def test_agrees_with_official_sdk_for_a_json_post(
    token: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Independent check: the SDK's SignerV4 signs what httpx sent and gets the same Authorization."""
    sdk = pytest.importorskip("volcengine.auth.SignerV4")
    from volcengine.base.Request import Request
    from volcengine.Credentials import Credentials

    query = {"Action": "CVSync2AsyncGetResult", "Version": "2022-08-31", "note": "a b+c/中"}
    request = await _send(
        _auth(V1, token=token),
        "POST",
        "https://visual.volcengineapi.com/",
        params=query,
        json={"req_key": "img2img_anime_accelerated_maintain_id", "task_id": "7392616336519610409"},
    )
    sdk_request = Request()
    sdk_request.method = "POST"
    sdk_request.path = "/"
    sdk_request.query = dict(query)
    sdk_request.headers = {"Host": "visual.volcengineapi.com", "Content-Type": "application/json"}
    sdk_request.body = request.content.decode("utf-8")
    credentials = Credentials(V1["access_key"], V1["secret_key"], "cv", "cn-north-1", token or "")
    monkeypatch.setattr(sdk.SignerV4, "get_current_format_date", staticmethod(lambda: V1["x_date"]))
    sdk.SignerV4.sign(sdk_request, credentials)
    assert request.headers["authorization"] == sdk_request.headers["Authorization"]
    assert request.headers["x-content-sha256"] == sdk_request.headers["X-Content-Sha256"]


async def test_each_send_is_signed_at_the_clock_time() -> None:
    clock = FakeClock(FROZEN)
    auth = _auth(V1, clock)
    first = await _send(auth, "POST", "https://visual.volcengineapi.com/", content=b"{}")
    clock.advance(3600 * 25)
    second = await _send(auth, "POST", "https://visual.volcengineapi.com/", content=b"{}")
    assert first.headers["x-date"] == "20240101T000000Z"
    assert second.headers["x-date"] == "20240102T010000Z"
    assert "/20240102/cn-north-1/cv/request" in second.headers["authorization"]


def test_resigning_is_idempotent_and_replaces_stale_headers() -> None:
    clock = FakeClock(FROZEN)
    auth = _auth(V1, clock, token="sts-token")
    request = httpx.Request(
        "POST",
        "https://visual.volcengineapi.com/",
        params=V1["query"],
        content=V1["body"].encode(),
        headers={
            "Content-Type": "application/json",
            "x-date": "19990101T000000Z",
            "authorization": "stale",
            "X-Security-Token": "old-token",
        },
    )
    auth.sign(request)
    once = dict(request.headers)
    auth.sign(request)
    assert dict(request.headers) == once
    for name in ("x-date", "x-content-sha256", "authorization", "x-security-token"):
        assert len(request.headers.get_list(name)) == 1, name
    assert request.headers["x-security-token"] == "sts-token"
    assert request.headers["x-date"] == "20240101T000000Z"

    clock.advance(60)
    auth.sign(request)
    assert request.headers["x-date"] == "20240101T000100Z"
    assert request.headers["authorization"] != once["authorization"]


def test_session_token_is_sent_and_signed() -> None:
    auth = _auth(V1, token="sts-token")
    request = httpx.Request("POST", "https://visual.volcengineapi.com/", content=b"{}")
    auth.sign(request)
    assert request.headers["x-security-token"] == "sts-token"
    assert "SignedHeaders=host;x-content-sha256;x-date;x-security-token," in request.headers["authorization"]


def test_secrets_stay_out_of_repr_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    auth = _auth(V1, token="sts-token-value")
    assert V1["secret_key"] not in repr(auth)
    assert "sts-token-value" not in repr(auth)
    assert V1["access_key"] not in repr(auth)
    request = httpx.Request("POST", "https://visual.volcengineapi.com/", content=b"{}")
    with caplog.at_level(logging.DEBUG, logger="api_client"):
        auth.sign(request)
    signature = request.headers["authorization"].rsplit("=", 1)[1]
    assert caplog.records, "signing logs its (harmless) summary at DEBUG"
    for secret in (V1["secret_key"], "sts-token-value", signature):
        assert secret not in caplog.text


@pytest.mark.parametrize(("ak", "sk"), [("", "sk"), ("ak", "")])
def test_missing_credentials_are_refused(ak: str, sk: str) -> None:
    with pytest.raises(ValueError):
        VolcengineAuth(ak, sk, region="cn-north-1", service="cv")


def test_x_date_is_the_clock_second_also_when_reused_within_it() -> None:
    clock = FakeClock(FROZEN + 0.25)
    auth = _auth(V1, clock)
    assert auth.x_date() == "20240101T000000Z"
    clock.advance(0.74)
    assert auth.x_date() == "20240101T000000Z"
    clock.advance(0.01)
    assert auth.x_date() == "20240101T000001Z"


def test_non_ascii_header_values_are_signed_as_httpx_decodes_them() -> None:
    from api_client.signing import sign_request

    auth = _auth(V1)
    request = httpx.Request(
        "POST", "https://visual.volcengineapi.com/?Action=A&Version=1", content=b"{}",
        headers={"Content-Type": "application/json", "X-Note": "caf\u00e9".encode()},
    )
    auth.sign(request)
    expected = sign_request(
        method="POST", path="/", query=[("Action", "A"), ("Version", "1")],
        headers=[("Host", "visual.volcengineapi.com"), ("Content-Type", "application/json"),
                 ("X-Note", "caf\u00e9"), ("X-Date", "20240101T000000Z"),
                 ("X-Content-Sha256", hashlib.sha256(b"{}").hexdigest())],
        body=b"{}", access_key=V1["access_key"], secret_key=V1["secret_key"], region=V1["region"],
        service=V1["service"], x_date="20240101T000000Z",
    )
    assert request.headers["authorization"] == expected.authorization


def test_signing_headers_of_a_header_list_are_what_sign_adds() -> None:
    auth = _auth(V1, token="sts-token")
    request = httpx.Request(
        "POST", "http://127.0.0.1:8080/?Action=A&Version=1", content=b'{"a":1}',
        headers={"Content-Type": "application/json", "X-Extra": "1"},
    )
    listed = [(name.decode(), value.decode()) for name, value in request.headers.raw]
    added = auth.signing_headers("POST", "/", "Action=A&Version=1", listed, b'{"a":1}')
    auth.sign(request)
    assert [name for name, _ in added] == ["X-Date", "X-Content-Sha256", "X-Security-Token", "Authorization"]
    for name, value in added:
        assert request.headers[name] == value, name
    assert "SignedHeaders=content-type;host;x-content-sha256;x-date;x-extra;x-security-token," in dict(added)[
        "Authorization"
    ]
