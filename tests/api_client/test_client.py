"""PortraitClient over httpx.MockTransport: the wire format, and exactly when a call is (not) sent again."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image

from api_client import (
    AuthError,
    FakeClock,
    LocalValidationError,
    PortraitClient,
    RateLimited,
    RiskRejected,
    RiskStage,
    ServerError,
    SubmitOutcomeUnknown,
    SubmitRequest,
    TaskStatus,
    TransportError,
    Watermark,
)
from api_client.models import REQ_KEY

SECRET = "s3cr3t-Secret-Key-value"
ACCESS = "AKLT-test-access-key"
Handler = Callable[[httpx.Request], httpx.Response]


def jpeg(size: tuple[int, int] = (256, 256), color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


FACE = jpeg()
RESULT_IMAGE = jpeg((64, 64), "blue")


def ok(data: dict[str, Any], request_id: str = "REQ-OK") -> httpx.Response:
    body = {"code": 10000, "data": data, "message": "Success", "request_id": request_id, "status": 10000,
            "time_elapsed": "1ms"}
    return httpx.Response(200, json=body)


def business_error(http_status: int, code: int, message: str = "error", **extra: Any) -> httpx.Response:
    body = {"code": code, "data": None, "message": message, "request_id": f"REQ-{code}", "status": code,
            "time_elapsed": "1ms", **extra}
    return httpx.Response(http_status, json=body)


def gateway_error(http_status: int, code: int, name: str) -> httpx.Response:
    error = {"CodeN": code, "Code": name, "Message": "gateway says no"}
    meta = {"RequestId": "REQ-GW", "Action": "x", "Version": "2022-08-31", "Service": "cv",
            "Region": "cn-north-1", "Error": error}
    return httpx.Response(http_status, json={"ResponseMetadata": meta})


SUBMITTED = {"task_id": "7392616336519610409"}
DONE = {
    "status": "done",
    "binary_data_base64": [base64.b64encode(RESULT_IMAGE).decode()],
    "image_urls": [""],
    "algorithm_base_resp": {"status_code": 0, "status_message": "Success"},
}


class Upstream:
    """A scripted upstream: answers (or raises) in order, repeating the last; records every request."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)

    @property
    def actions(self) -> list[str]:
        return [r.url.params["Action"] for r in self.requests]

    def body(self, index: int = -1) -> dict[str, Any]:
        parsed = json.loads(self.requests[index].content)
        assert isinstance(parsed, dict)
        return parsed


def make_client(upstream: Upstream, clock: FakeClock | None = None, **options: Any) -> PortraitClient:
    options.setdefault("rng", random.Random(7))
    return PortraitClient(
        ACCESS, SECRET, transport=httpx.MockTransport(upstream), clock=clock or FakeClock(), **options
    )


def read_timeout(request_hint: str = "read") -> httpx.ReadTimeout:
    return httpx.ReadTimeout(f"timed out during {request_hint}")


# --- wire format -----------------------------------------------------------------------------------


async def test_submit_wire_format_is_signed_compact_json() -> None:
    upstream = Upstream(ok(SUBMITTED))
    async with make_client(upstream) as client:
        task_id = await client.submit(SubmitRequest.from_images(FACE, face_switch=True))
    assert task_id == "7392616336519610409"
    (request,) = upstream.requests
    assert request.method == "POST"
    assert request.url.host == "visual.volcengineapi.com" and request.url.path == "/"
    assert dict(request.url.params) == {"Action": "CVSync2AsyncSubmitTask", "Version": "2022-08-31"}
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Date"] == "20240101T000000Z"  # FakeClock starts at the vector epoch
    assert request.headers["X-Content-Sha256"] == hashlib.sha256(request.content).hexdigest()
    assert request.headers["Authorization"].startswith(
        f"HMAC-SHA256 Credential={ACCESS}/20240101/cn-north-1/cv/request, "
        "SignedHeaders=content-type;host;x-content-sha256;x-date, Signature="
    )
    assert b", " not in request.content and b'": ' not in request.content  # compact: the signed bytes
    body = upstream.body()
    assert body["req_key"] == REQ_KEY
    assert body["binary_data_base64"] == [base64.b64encode(FACE).decode()]
    assert body["face_image"] == "uri://binary_data?index=0" and body["face_switch"] is True


async def test_timeouts_per_phase_reach_the_transport() -> None:
    upstream = Upstream(ok({"status": "in_queue"}))
    async with make_client(upstream) as client:
        await client.get_result("T")
    assert upstream.requests[0].extensions["timeout"] == {"connect": 5.0, "read": 30.0, "write": 30.0,
                                                          "pool": 10.0}


async def test_get_result_body_and_watermark_req_json() -> None:
    upstream = Upstream(ok({"status": "generating"}, request_id="R7"))
    async with make_client(upstream) as client:
        result = await client.get_result("T1", watermark=Watermark(position=1, language=1, opacity=0.5))
    assert result.status is TaskStatus.GENERATING and result.images == () and result.request_id == "R7"
    assert upstream.actions == ["CVSync2AsyncGetResult"]
    body = upstream.body()
    assert body["req_key"] == REQ_KEY and body["task_id"] == "T1"
    assert json.loads(body["req_json"]) == {
        "logo_info": {"add_logo": True, "position": 1, "language": 1, "opacity": 0.5}
    }


@pytest.mark.parametrize("status", ["in_queue", "generating", "not_found"])
async def test_get_result_pending_statuses(status: str) -> None:
    async with make_client(Upstream(ok({"status": status}))) as client:
        result = await client.get_result("T")
    assert result.status == status and result.images == ()


async def test_get_result_done_decodes_images() -> None:
    async with make_client(Upstream(ok(DONE))) as client:
        result = await client.get_result("T")
    assert result.status is TaskStatus.DONE
    assert result.images == (RESULT_IMAGE,)
    assert result.image_urls == ()  # the service's [""] placeholder is dropped


async def test_get_result_done_with_urls() -> None:
    data = {"status": "done", "binary_data_base64": [], "image_urls": ["https://cdn.example/x.jpg"]}
    async with make_client(Upstream(ok(data))) as client:
        result = await client.get_result("T")
    assert result.image_urls == ("https://cdn.example/x.jpg",) and result.images == ()


@pytest.mark.parametrize("http_status", [200, 400])
async def test_done_with_business_error_raises_the_mapped_error(http_status: int) -> None:
    upstream = Upstream(
        business_error(http_status, 50511, "Post Img Risk Not Pass", data={"status": "done"})
    )
    async with make_client(upstream) as client:
        with pytest.raises(RiskRejected) as info:
            await client.get_result("T")
    assert info.value.stage is RiskStage.OUTPUT_IMAGE and info.value.new_seed_may_pass
    assert info.value.request_id == "REQ-50511"
    assert len(upstream.requests) == 1  # a verdict is not retried


async def test_done_without_images_maps_the_algorithm_code() -> None:
    data = {"status": "done", "binary_data_base64": [],
            "algorithm_base_resp": {"status_code": 60102, "status_message": "no face"}}
    async with make_client(Upstream(ok(data))) as client:
        with pytest.raises(Exception) as info:
            await client.get_result("T")
    assert type(info.value).__name__ == "NoFaceDetected"


async def test_unknown_task_status_is_a_server_error() -> None:
    async with make_client(Upstream(ok({"status": "exploded"}))) as client:
        with pytest.raises(ServerError, match="exploded"):
            await client.get_result("T")


# --- submit: resent only when the service surely did not run it ------------------------------------


async def test_submit_not_resent_after_read_timeout() -> None:
    upstream = Upstream(read_timeout(), ok(SUBMITTED))
    clock = FakeClock()
    async with make_client(upstream, clock) as client:
        with pytest.raises(SubmitOutcomeUnknown) as info:
            await client.submit(SubmitRequest.from_images(FACE))
    assert len(upstream.requests) == 1
    assert clock.sleeps == []
    assert info.value.retryable is False


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, text="upstream exploded"),
        httpx.Response(502, text="<html>bad gateway</html>"),
        business_error(500, 50500, "Internal Error"),
        httpx.RemoteProtocolError("server disconnected without sending a response"),
        httpx.WriteError("connection reset while writing"),
        httpx.Response(200, text="not json"),
    ],
    ids=["500", "502-html", "50500", "disconnect", "write-error", "200-garbage"],
)
async def test_submit_outcome_unknown_is_never_resent(answer: httpx.Response | Exception) -> None:
    upstream = Upstream(answer, ok(SUBMITTED))
    async with make_client(upstream) as client:
        with pytest.raises(SubmitOutcomeUnknown):
            await client.submit(SubmitRequest.from_images(FACE))
    assert len(upstream.requests) == 1


async def test_submit_resent_after_connect_error_with_identical_bytes() -> None:
    upstream = Upstream(httpx.ConnectError("connection refused"), ok(SUBMITTED))
    clock = FakeClock()
    async with make_client(upstream, clock) as client:
        assert await client.submit(SubmitRequest.from_images(FACE)) == SUBMITTED["task_id"]
    assert len(upstream.requests) == 2
    assert upstream.requests[0].content == upstream.requests[1].content
    assert len(clock.sleeps) == 1 and 0.0 <= clock.sleeps[0] <= 0.5  # jittered transient back-off


@pytest.mark.parametrize(
    "throttled",
    [business_error(429, 50429, "QPS limit"), business_error(429, 50430, "concurrency limit"),
     httpx.Response(429, text="slow down"), gateway_error(429, 100018, "FlowLimitExceeded")],
    ids=["50429", "50430", "bare-429", "100018"],
)
async def test_submit_resent_after_definite_throttle(throttled: httpx.Response) -> None:
    upstream = Upstream(throttled, ok(SUBMITTED))
    clock = FakeClock()
    async with make_client(upstream, clock) as client:
        assert await client.submit(SubmitRequest.from_images(FACE)) == SUBMITTED["task_id"]
    assert upstream.actions == ["CVSync2AsyncSubmitTask"] * 2
    assert len(clock.sleeps) == 1 and 0.0 <= clock.sleeps[0] <= 1.0  # throttled base 1 s


async def test_submit_throttled_until_retries_run_out() -> None:
    upstream = Upstream(business_error(429, 50429))
    async with make_client(upstream, max_retries=2) as client:
        with pytest.raises(RateLimited) as info:
            await client.submit(SubmitRequest.from_images(FACE))
    assert len(upstream.requests) == 3
    assert info.value.code == 50429


async def test_submit_connect_errors_until_retries_run_out_is_a_plain_transport_error() -> None:
    upstream = Upstream(httpx.ConnectTimeout("connect timed out"))
    async with make_client(upstream, max_retries=1) as client:
        with pytest.raises(TransportError) as info:
            await client.submit(SubmitRequest.from_images(FACE))
    assert not isinstance(info.value, SubmitOutcomeUnknown)  # it surely never arrived: safe to try later
    assert info.value.connect_phase and len(upstream.requests) == 2


async def test_retry_after_header_is_obeyed() -> None:
    throttled = httpx.Response(
        429, json={"code": 50429, "message": "QPS", "request_id": "R"}, headers={"Retry-After": "3"}
    )
    upstream = Upstream(throttled, ok(SUBMITTED))
    clock = FakeClock()
    async with make_client(upstream, clock) as client:
        await client.submit(SubmitRequest.from_images(FACE))
    assert clock.sleeps == [3.0]


async def test_max_retries_zero_disables_retries() -> None:
    upstream = Upstream(httpx.ConnectError("refused"), ok(SUBMITTED))
    async with make_client(upstream, max_retries=0) as client:
        with pytest.raises(TransportError):
            await client.submit(SubmitRequest.from_images(FACE))
    assert len(upstream.requests) == 1


async def test_invalid_request_is_refused_before_any_http() -> None:
    upstream = Upstream(ok(SUBMITTED))
    async with make_client(upstream) as client:
        with pytest.raises(LocalValidationError) as info:
            await client.submit(SubmitRequest.from_images(FACE, width=5000))
    assert info.value.rule == "output_size"
    assert upstream.requests == []


# --- get_result: resend-safe -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(500, text="oops"), business_error(500, 50501), business_error(500, 50521),
     read_timeout(), httpx.RemoteProtocolError("dropped"), httpx.Response(200, text="<html>")],
    ids=["500", "50501", "50521", "read-timeout", "dropped", "200-garbage"],
)
async def test_get_result_retried_on_transient_failures(failure: httpx.Response | Exception) -> None:
    upstream = Upstream(failure, ok({"status": "generating"}))
    clock = FakeClock()
    async with make_client(upstream, clock) as client:
        result = await client.get_result("T")
    assert result.status is TaskStatus.GENERATING
    assert len(upstream.requests) == 2 and len(clock.sleeps) == 1


async def test_get_result_server_error_after_all_retries() -> None:
    upstream = Upstream(httpx.Response(503, text="down"))
    clock = FakeClock()
    async with make_client(upstream, clock) as client:
        with pytest.raises(ServerError) as info:
            await client.get_result("T")
    assert len(upstream.requests) == 4  # max_retries=3
    assert info.value.http_status == 503
    ceilings = [0.5, 1.0, 2.0]  # full jitter under base * 2**(attempt-1)
    assert len(clock.sleeps) == 3
    assert all(0.0 <= s <= c for s, c in zip(clock.sleeps, ceilings, strict=True))


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (business_error(400, 50412, "Text Risk Not Pass"), RiskRejected),
        (business_error(400, 50200, "bad param"), Exception),
        (gateway_error(401, 100010, "SignatureDoesNotMatch"), AuthError),
        (business_error(401, 50400, "Access Denied"), AuthError),
    ],
    ids=["50412", "50200", "100010", "50400"],
)
async def test_final_errors_are_not_retried(answer: httpx.Response, error: type[Exception]) -> None:
    upstream = Upstream(answer)
    clock = FakeClock()
    async with make_client(upstream, clock) as client:
        with pytest.raises(error):
            await client.get_result("T")
    assert len(upstream.requests) == 1 and clock.sleeps == []


# --- client set-up, throttling, task slots, logging ------------------------------------------------


def test_credentials_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOLC_ACCESSKEY", "AK-env")
    monkeypatch.setenv("VOLC_SECRETKEY", "SK-env")
    PortraitClient(transport=httpx.MockTransport(Upstream(ok({}))))


def test_missing_credentials_fail_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOLC_ACCESSKEY", raising=False)
    monkeypatch.delenv("VOLC_SECRETKEY", raising=False)
    with pytest.raises(AuthError, match="VOLC_ACCESSKEY"):
        PortraitClient()
    with pytest.raises(AuthError):
        PortraitClient("AK-only")


async def test_env_credentials_sign_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOLC_ACCESSKEY", "AK-from-env")
    monkeypatch.setenv("VOLC_SECRETKEY", "SK-from-env")
    upstream = Upstream(ok({"status": "in_queue"}))
    async with PortraitClient(transport=httpx.MockTransport(upstream), clock=FakeClock()) as client:
        await client.get_result("T")
    assert "Credential=AK-from-env/" in upstream.requests[0].headers["Authorization"]


async def test_every_attempt_waits_for_the_shared_qps_throttle() -> None:
    upstream = Upstream(ok({"status": "in_queue"}))
    clock = FakeClock()
    async with make_client(upstream, clock, qps=2.0) as client:
        for _ in range(5):
            await client.get_result("T")
    # Burst of 2 (bucket starts full), then one token per 0.5 s.
    assert clock.sleeps == pytest.approx([0.5, 0.5, 0.5])
    assert len(upstream.requests) == 5


async def test_throttle_applies_to_retries_too() -> None:
    upstream = Upstream(httpx.ConnectError("refused"), ok(SUBMITTED))
    clock = FakeClock()
    async with make_client(upstream, clock, qps=1.0, rng=random.Random(1)) as client:
        await client.submit(SubmitRequest.from_images(FACE))
    backoff = clock.sleeps[0]
    # The retry's token was not yet refilled after the short back-off, so the throttle made up the rest.
    assert clock.sleeps[1:] == pytest.approx([1.0 - backoff])


async def test_generate_holds_a_task_slot_and_returns_images() -> None:
    upstream = Upstream(ok(SUBMITTED), ok({"status": "in_queue"}), ok({"status": "generating"}), ok(DONE))
    clock = FakeClock()
    slots: list[int] = []
    async with make_client(upstream, clock, max_concurrent_tasks=3) as client:

        async def progress(status: TaskStatus) -> None:
            slots.append(client.throttle.tasks_in_flight)

        request = SubmitRequest.from_images(FACE, face_switch=True)
        result = await client.generate(request, on_progress=progress)
        assert client.throttle.tasks_in_flight == 0
    assert result.images == (RESULT_IMAGE,)
    assert slots == [1, 1, 1]
    assert upstream.actions == ["CVSync2AsyncSubmitTask"] + ["CVSync2AsyncGetResult"] * 3
    assert {upstream.body(i)["task_id"] for i in (1, 2, 3)} == {SUBMITTED["task_id"]}
    assert clock.sleeps == [1.5, 2.25, 3.375]


class ParkedClock(FakeClock):
    """Sleeps park until cancelled, so a test can cancel a generate() mid-wait."""

    def __init__(self) -> None:
        super().__init__()
        self.parked = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.parked.set()
        await asyncio.Event().wait()


async def test_cancelled_generate_releases_its_task_slot() -> None:
    upstream = Upstream(ok(SUBMITTED), ok({"status": "in_queue"}))
    clock = ParkedClock()
    async with make_client(upstream, clock, max_concurrent_tasks=1) as client:
        before = asyncio.all_tasks()
        job = asyncio.create_task(client.generate(SubmitRequest.from_images(FACE)))
        await clock.parked.wait()
        assert client.throttle.tasks_in_flight == 1
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        assert client.throttle.tasks_in_flight == 0
        assert asyncio.all_tasks() == before
    assert upstream.actions == ["CVSync2AsyncSubmitTask"]  # cancelled during the first wait, before a poll


async def test_logs_carry_call_facts_but_no_secrets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    upstream = Upstream(business_error(500, 50500), ok({"status": "generating"}), ok(DONE))
    async with make_client(upstream) as client:
        await client.get_result("T")
        await client.get_result("T")
    records = [r for r in caplog.records if r.name == "api_client"]
    assert [getattr(r, "attempt", None) for r in records] == [1, 2, 1]
    retry = records[0]
    assert retry.levelno == logging.WARNING
    facts = {name: retry.__dict__.get(name) for name in ("action", "status", "request_id")}
    assert facts == {"action": "CVSync2AsyncGetResult", "status": 500, "request_id": "REQ-50500"}
    assert isinstance(retry.__dict__.get("latency"), float)
    everything = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert SECRET not in everything
    assert "HMAC-SHA256" not in everything and "Signature=" not in everything
    assert base64.b64encode(RESULT_IMAGE).decode()[:40] not in everything


def test_repr_hides_credentials() -> None:
    client = make_client(Upstream(ok({})))
    assert SECRET not in repr(client) and ACCESS not in repr(client)


# --- end to end against the emulator (in-process, signed, on the shared fake clock) -------------------------


@pytest.fixture
def emulator_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(emulator_clock: FakeClock) -> Any:
    from api_client.emulator import EmulatorConfig, create_app

    config = EmulatorConfig(
        access_key=ACCESS, secret_key=SECRET, queue_seconds=2.0, generate_seconds=5.0,
        clock=emulator_clock.now, sleep=emulator_clock.sleep,
    )
    return create_app(config)


def emulator_client(app: Any, clock: FakeClock, **options: Any) -> PortraitClient:
    return PortraitClient(
        ACCESS, SECRET, endpoint="http://emulator.test", transport=httpx.ASGITransport(app=app), clock=clock,
        rng=random.Random(3), **options,
    )


async def test_e2e_generate_against_the_emulator(emulator: Any, emulator_clock: FakeClock) -> None:
    seen: list[TaskStatus] = []

    async def progress(status: TaskStatus) -> None:
        seen.append(status)

    face = jpeg((512, 640), "peachpuff")
    async with emulator_client(emulator, emulator_clock) as client:
        request = SubmitRequest.from_images(face, face_switch=True, width=800, height=600)
        task_id = await client.submit(request)
        result = await client.wait(task_id, on_progress=progress, watermark=Watermark(language=1))
    assert seen == [TaskStatus.IN_QUEUE, TaskStatus.GENERATING, TaskStatus.DONE]
    assert emulator_clock.sleeps == [1.5, 2.25, 3.375]  # in_queue until 2 s, generating until 7 s
    assert result.status is TaskStatus.DONE and result.request_id
    image = Image.open(io.BytesIO(result.images[0]))
    assert image.format == "JPEG" and image.size == (800, 600)
    assert emulator.state.emulator.submits_received == 1


async def test_e2e_risk_triggers(emulator: Any, emulator_clock: FakeClock) -> None:
    async with emulator_client(emulator, emulator_clock) as client:
        with pytest.raises(RiskRejected) as at_submit:
            await client.submit(SubmitRequest.from_images(FACE, positive_prompt="a risky prompt"))
        assert at_submit.value.stage is RiskStage.INPUT_TEXT
        with pytest.raises(RiskRejected) as at_result:
            await client.generate(SubmitRequest.from_images(FACE, face_switch=True, seed=50511))
        assert at_result.value.stage is RiskStage.OUTPUT_IMAGE


async def test_e2e_faults_retry_and_outcome_unknown(emulator: Any, emulator_clock: FakeClock) -> None:
    from api_client.emulator import Fault

    faults = emulator.state.emulator.faults
    async with emulator_client(emulator, emulator_clock) as client:
        faults.push(Fault.THROTTLED, "CVSync2AsyncSubmitTask")
        faults.push(Fault.INTERNAL, "CVSync2AsyncGetResult")
        result = await client.generate(SubmitRequest.from_images(FACE))
        assert result.images
        state = emulator.state.emulator
        assert state.submits_received == 2 and len(state.tasks) == 1  # the 50429 was resent, billed once

        faults.push(Fault.DROP_AFTER, "CVSync2AsyncSubmitTask")
        with pytest.raises(SubmitOutcomeUnknown):
            await client.submit(SubmitRequest.from_images(FACE))
        assert state.submits_received == 3 and len(state.tasks) == 2  # it did arrive: not resent


# --- the attempt observer (metrics) -----------------------------------------------------------------


async def test_the_observer_hears_every_attempt_with_its_code() -> None:
    seen: list[tuple[str, int | None, int | None]] = []
    upstream = Upstream(gateway_error(429, 100018, "FlowLimitExceeded"), ok(SUBMITTED), read_timeout())

    def observer(action: str, seconds: float, status: int | None, code: int | None) -> None:
        assert seconds >= 0
        seen.append((action, status, code))

    async with make_client(upstream, observer=observer, max_retries=1) as client:
        await client.submit(SubmitRequest.from_images(FACE, face_switch=True))
        with pytest.raises(TransportError):
            await client.get_result("7392616336519610409")
    submit, result = "CVSync2AsyncSubmitTask", "CVSync2AsyncGetResult"
    assert seen[:2] == [(submit, 429, 100018), (submit, 200, None)]
    assert seen[2:] == [(result, None, None)] * 2  # no answer at all: neither status nor code
