"""Every api.md code maps to its exception, for both body shapes; unknown codes and junk bodies fall back."""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from api_client.errors import (
    CODE_TABLE,
    AuthError,
    ImageRejected,
    InvalidRequest,
    LocalValidationError,
    NoFaceDetected,
    PollDeadlineExceeded,
    PortraitAPIError,
    RateLimited,
    RiskRejected,
    RiskStage,
    ServerError,
    SubmitOutcomeUnknown,
    TaskNotFound,
    TransportError,
    error_from_response,
    error_from_transport,
)

_API_MD = Path(__file__).parents[3] / "shared" / "seed" / "api.md"

# (code, documented HTTP status, class, risk stage or None, retryable) -- one row per api.md code.
ROWS: list[tuple[int, int, type[PortraitAPIError], RiskStage | None, bool]] = [
    (50200, 400, InvalidRequest, None, False),
    (50201, 400, InvalidRequest, None, False),
    (50204, 400, InvalidRequest, None, False),
    (50205, 400, InvalidRequest, None, False),
    (50206, 400, InvalidRequest, None, False),
    (50207, 400, InvalidRequest, None, False),
    (50213, 400, InvalidRequest, None, False),
    (50215, 400, InvalidRequest, None, False),
    (50402, 404, InvalidRequest, None, False),
    (60102, 400, NoFaceDetected, None, False),
    (50411, 400, RiskRejected, RiskStage.INPUT_IMAGE, False),
    (50412, 400, RiskRejected, RiskStage.INPUT_TEXT, False),
    (50413, 400, RiskRejected, RiskStage.BLOCKLIST, False),
    (50511, 400, RiskRejected, RiskStage.OUTPUT_IMAGE, False),
    (50512, 400, RiskRejected, RiskStage.OUTPUT_TEXT, False),
    (50518, 400, RiskRejected, RiskStage.COPYRIGHT_INPUT, False),
    (50519, 400, RiskRejected, RiskStage.COPYRIGHT_OUTPUT, False),
    (50400, 401, AuthError, None, False),
    *[(code, 401, AuthError, None, False) for code in range(100002, 100017)],
    (50429, 429, RateLimited, None, True),
    (50430, 429, RateLimited, None, True),
    (100018, 429, RateLimited, None, True),
    (50500, 500, ServerError, None, True),
    (50501, 500, ServerError, None, True),
    (50520, 400, ServerError, None, True),
    (50521, 400, ServerError, None, True),
    (50522, 400, ServerError, None, True),
]


def _business(code: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": f"message {code}",
        "data": None,
        "request_id": "2024061214082851989A35E4283DB7C8AD",
        "status": code,
        "time_elapsed": "1.2ms",
    }


def _gateway(code: int) -> dict[str, Any]:
    return {
        "ResponseMetadata": {
            "RequestId": "2024061214082851989A35E4283DB7C8AD",
            "Action": "CVSync2AsyncSubmitTask",
            "Version": "2022-08-31",
            "Service": "cv",
            "Region": "cn-north-1",
            "Error": {"CodeN": code, "Code": "SomeName", "Message": f"message {code}"},
        }
    }


def _business_bytes(code: int) -> bytes:
    return json.dumps(_business(code)).encode()


def _gateway_bytes(code: int) -> bytes:
    return json.dumps(_gateway(code)).encode()


SHAPES: dict[str, Callable[[int], bytes | dict[str, Any]]] = {
    "business-bytes": _business_bytes,
    "business-mapping": _business,
    "gateway-bytes": _gateway_bytes,
}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("status_kind", ["documented", "200"])
@pytest.mark.parametrize(("code", "status", "cls", "stage", "retryable"), ROWS, ids=[str(r[0]) for r in ROWS])
def test_every_code_maps_to_its_class(
    code: int,
    status: int,
    cls: type[PortraitAPIError],
    stage: RiskStage | None,
    retryable: bool,
    status_kind: str,
    shape: str,
) -> None:
    http_status = status if status_kind == "documented" else 200  # GetResult reports failures with 200
    error = error_from_response(http_status, SHAPES[shape](code))
    assert type(error) is cls
    assert error.code == code
    assert error.http_status == http_status
    assert error.request_id == "2024061214082851989A35E4283DB7C8AD"
    assert f"message {code}" in error.message
    assert error.retryable is retryable
    if stage is not None:
        assert isinstance(error, RiskRejected)
        assert error.stage is stage
    assert str(code) in str(error) and "2024061214082851989A35E4283DB7C8AD" in str(error)


def test_code_table_has_exactly_the_rows_tested() -> None:
    assert set(CODE_TABLE) == {row[0] for row in ROWS}


@pytest.mark.skipif(not _API_MD.exists(), reason="shared seed folder not beside the repo")
def test_every_code_named_in_api_md_is_in_the_table() -> None:
    text = _API_MD.read_text("utf-8")
    codes = {int(c) for c in re.findall(r"\b(?:[56]\d{4}|100\d{3})\b", text)} - {10000}
    missing = codes - set(CODE_TABLE)
    assert not missing, f"api.md codes with no CODE_TABLE row: {sorted(missing)}"


def test_gateway_error_keeps_name_message_and_request_id() -> None:
    body = {
        "ResponseMetadata": {
            "RequestId": "req-gw-1",
            "Error": {"CodeN": 100010, "Code": "SignatureDoesNotMatch", "Message": "signature mismatch"},
        }
    }
    error = error_from_response(401, json.dumps(body).encode())
    assert isinstance(error, AuthError)
    assert error.message == "SignatureDoesNotMatch: signature mismatch"
    assert error.request_id == "req-gw-1"
    assert error.retryable is False


def test_gateway_error_with_unknown_code_falls_back_to_status() -> None:
    body = {"ResponseMetadata": {"RequestId": "r", "Error": {"CodeN": 100099, "Code": "Weird"}}}
    error = error_from_response(503, body)
    assert type(error) is ServerError and error.code == 100099 and error.message == "Weird"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (429, RateLimited),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (401, AuthError),
        (403, AuthError),
        (400, InvalidRequest),
        (404, InvalidRequest),
        (413, InvalidRequest),
        (200, InvalidRequest),
    ],
)
@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        b"",
        None,
        b"\xff\xfe not utf-8",
        b"[1, 2, 3]",
        b'"just a string"',
        json.dumps({"code": 99999, "message": "new code", "request_id": "r"}).encode(),
        json.dumps({"message": "no code at all"}).encode(),
        json.dumps({"code": True}).encode(),
    ],
    ids=["html", "empty", "none", "binary", "array", "string", "unknown-code", "no-code", "bool-code"],
)
def test_unknown_or_missing_code_falls_back_to_http_status(
    status: int, cls: type[PortraitAPIError], body: bytes | None
) -> None:
    error = error_from_response(status, body)
    assert type(error) is cls
    assert error.http_status == status
    assert error.retryable is (cls in (RateLimited, ServerError))
    assert f"http={status}" in str(error)


def test_non_json_body_is_not_echoed() -> None:
    error = error_from_response(502, b"<html>Authorization: HMAC-SHA256 secret-ish</html>")
    assert error.message == "HTTP 502 with a non-JSON body"
    assert "HMAC" not in str(error) and "HMAC" not in repr(error)


def test_code_given_as_string_is_understood() -> None:
    error = error_from_response(200, {"code": "50412", "message": "Text Risk Not Pass", "request_id": "r"})
    assert isinstance(error, RiskRejected) and error.stage is RiskStage.INPUT_TEXT and error.code == 50412


def test_retry_after_is_kept_only_where_it_means_something() -> None:
    limited = error_from_response(429, _business(50429), retry_after=2.5)
    assert isinstance(limited, RateLimited) and limited.retry_after == 2.5
    server = error_from_response(503, b"", retry_after=7.0)
    assert isinstance(server, ServerError) and server.retry_after == 7.0
    invalid = error_from_response(400, _business(50200), retry_after=3.0)
    assert not hasattr(invalid, "retry_after")


def test_output_risk_stages_say_a_new_seed_may_pass() -> None:
    passes = {stage for stage in RiskStage if RiskRejected(stage=stage).new_seed_may_pass}
    assert passes == {RiskStage.OUTPUT_IMAGE, RiskStage.OUTPUT_TEXT, RiskStage.COPYRIGHT_OUTPUT}


def test_str_is_short_and_names_code_and_request_id() -> None:
    error = error_from_response(400, {"code": 50200, "message": "x" * 5000, "request_id": "req-7"})
    assert len(str(error)) < 300
    assert str(error).startswith("InvalidRequest: ")
    assert "code=50200" in str(error) and "request_id=req-7" in str(error)


LOCAL_ERRORS: list[PortraitAPIError] = [
    PortraitAPIError("root", code=1, http_status=500, request_id="r", retryable=True),
    InvalidRequest("bad"),
    NoFaceDetected(code=60102, http_status=400),
    LocalValidationError("width out of range", rule="width_range"),
    ImageRejected(reason="bomb"),
    RiskRejected("risk", stage=RiskStage.OUTPUT_IMAGE, code=50511, request_id="r"),
    AuthError("no credentials"),
    RateLimited("slow down", code=50429, retry_after=1.5),
    ServerError(code=50500, http_status=500),
    TaskNotFound("task 1 expired"),
    PollDeadlineExceeded("gave up after 300 s"),
    TransportError("ConnectError during connect", connect_phase=True),
    SubmitOutcomeUnknown("ReadTimeout after send", code=50500, http_status=500),
]


@pytest.mark.parametrize("error", LOCAL_ERRORS, ids=lambda e: type(e).__name__)
def test_errors_pickle_round_trip(error: PortraitAPIError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert vars(copy) == vars(error)
    assert str(copy) == str(error)


@pytest.mark.parametrize("error", LOCAL_ERRORS, ids=lambda e: type(e).__name__)
def test_errors_hold_only_plain_data(error: PortraitAPIError) -> None:
    plain = (str, int, float, bool, type(None))
    for name, value in vars(error).items():
        assert isinstance(value, plain), f"{type(error).__name__}.{name} is {type(value).__name__}"


def test_tree_shape() -> None:
    assert issubclass(NoFaceDetected, InvalidRequest)
    assert issubclass(LocalValidationError, InvalidRequest)
    assert issubclass(ImageRejected, InvalidRequest)
    assert issubclass(SubmitOutcomeUnknown, TransportError)
    for cls in (InvalidRequest, RiskRejected, AuthError, RateLimited, ServerError, TaskNotFound,
                PollDeadlineExceeded, TransportError):
        assert cls.__bases__ == (PortraitAPIError,)


def test_local_errors_have_no_code_and_carry_their_detail() -> None:
    local = LocalValidationError(rule="hyper_needs_switches_off")
    assert local.code is None and local.rule == "hyper_needs_switches_off"
    assert "hyper_needs_switches_off" in str(local)
    assert ImageRejected(reason="too_small").reason == "too_small"
    with pytest.raises(ValueError):
        ImageRejected(reason="ugly")
    with pytest.raises(ValueError):
        RiskRejected(stage="somewhere")


def test_submit_outcome_unknown_is_never_retryable() -> None:
    error = SubmitOutcomeUnknown(retryable=True, connect_phase=True)
    assert error.retryable is False and error.connect_phase is False


@pytest.mark.parametrize(
    ("exc", "connect_phase"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), True),
        (httpx.ConnectTimeout("timed out"), True),
        (httpx.PoolTimeout("no connection"), True),
        (httpx.ReadTimeout("timed out"), False),
        (httpx.WriteTimeout("timed out"), False),
        (httpx.RemoteProtocolError("Server disconnected"), False),
        (httpx.ReadError("reset"), False),
    ],
    ids=lambda x: type(x).__name__ if isinstance(x, Exception) else str(x),
)
def test_error_from_transport_records_the_phase(exc: httpx.TransportError, connect_phase: bool) -> None:
    exc.request = httpx.Request("POST", "https://visual.volcengineapi.com/?Action=X", headers={"A": "secret"})
    error = error_from_transport(exc)
    assert type(error) is TransportError
    assert error.connect_phase is connect_phase
    assert error.retryable is connect_phase
    assert type(exc).__name__ in str(error)
    assert "volcengineapi" not in str(error) and "secret" not in repr(error)
