"""The named transports over a real socket (the emulator served by uvicorn in a thread), and the aiohttp
transport's error mapping: a billed submit must be resent only after errors that surely sent nothing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import aiohttp
import httpx
import pytest

from api_client import PortraitClient, SubmitOutcomeUnknown, SubmitRequest, TaskStatus, TransportError
from api_client.clock import SystemClock
from api_client.emulator import EmulatorConfig, Fault, RunningEmulator, serve_in_thread
from api_client.errors import error_from_transport
from api_client.transport import (
    DEFAULT_TRANSPORT,
    TRANSPORT_NAMES,
    AiohttpTransport,
    _map_error,
    env_proxy,
    make_transport,
)

from .emulator._support import image_bytes

AK, SK = "AKtransport", "SKtransport"
SUBMIT, RESULT = "CVSync2AsyncSubmitTask", "CVSync2AsyncGetResult"
FACE = image_bytes(fmt="JPEG")


class InstantSleeps(SystemClock):
    """The real wall clock (the emulator checks X-Date against it), but back-off sleeps take no time."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


@pytest.fixture
def running() -> Iterator[RunningEmulator]:
    config = EmulatorConfig(access_key=AK, secret_key=SK, queue_seconds=0, generate_seconds=0)
    with serve_in_thread(config) as served:
        yield served


def _client(base_url: str, transport: str, **options: object) -> PortraitClient:
    return PortraitClient(AK, SK, endpoint=base_url, transport=transport,  # type: ignore[arg-type]
                          clock=InstantSleeps(), **options)  # type: ignore[arg-type]


def _request() -> SubmitRequest:
    return SubmitRequest.from_images(FACE, face_switch=True, width=600, height=600)


def test_the_default_transport_is_aiohttp() -> None:
    assert DEFAULT_TRANSPORT == "aiohttp"
    assert isinstance(make_transport(endpoint="https://visual.volcengineapi.com"), AiohttpTransport)
    assert isinstance(PortraitClient(AK, SK)._transport, AiohttpTransport)
    assert isinstance(make_transport("httpx", endpoint="http://127.0.0.1"), httpx.AsyncHTTPTransport)
    with pytest.raises(ValueError, match="unknown transport"):
        make_transport("curl", endpoint="http://127.0.0.1")  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
async def test_generate_over_a_real_socket(running: RunningEmulator, transport: str) -> None:
    async with _client(running.base_url, transport) as client:
        first = await client.generate(_request())
        second = await client.generate(_request())  # over the kept-alive connection
    for result in (first, second):
        assert result.status is TaskStatus.DONE and result.images[0][:2] == b"\xff\xd8"
    assert running.state.submits_received == 2  # signed well enough for the emulator's verifier


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
async def test_a_submit_dropped_after_processing_is_outcome_unknown_and_not_resent(
    running: RunningEmulator, transport: str
) -> None:
    running.state.faults.push(Fault.DROP_AFTER, SUBMIT)
    async with _client(running.base_url, transport) as client:
        with pytest.raises(SubmitOutcomeUnknown):
            await client.submit(_request())
    assert running.state.submits_received == 1
    assert len(running.state.tasks) == 1  # the service did run it: resending would have billed twice


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
async def test_a_dropped_poll_is_retried(running: RunningEmulator, transport: str) -> None:
    async with _client(running.base_url, transport) as client:
        task_id = await client.submit(_request())
        running.state.faults.push(Fault.DROP, RESULT)
        result = await client.get_result(task_id)
    assert result.status is TaskStatus.DONE
    assert running.state.received[RESULT] == 2


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
async def test_a_refused_connection_is_a_connect_phase_error(transport: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    async with _client(f"http://127.0.0.1:{port}", transport, max_retries=0) as client:
        with pytest.raises(TransportError) as caught:
            await client.submit(_request())
    assert caught.value.connect_phase
    assert not isinstance(caught.value, SubmitOutcomeUnknown)  # surely never sent: safe to resend


async def test_a_read_timeout_is_not_connect_phase(running: RunningEmulator) -> None:
    running.state.faults.latency_seconds = 1.0
    timeout = httpx.Timeout(connect=5.0, read=0.1, write=5.0, pool=5.0)
    async with _client(running.base_url, "aiohttp", timeout=timeout) as client:
        with pytest.raises(SubmitOutcomeUnknown, match="ReadTimeout"):
            await client.submit(_request())


@pytest.mark.parametrize(
    ("exc", "expected", "connect_phase"),
    [
        (aiohttp.ConnectionTimeoutError("connect"), httpx.ConnectTimeout, True),
        (aiohttp.InvalidURL("ftp://x"), httpx.UnsupportedProtocol, True),
        (aiohttp.SocketTimeoutError("read"), httpx.ReadTimeout, False),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError, False),
        (aiohttp.ClientPayloadError("cut short"), httpx.RemoteProtocolError, False),
        (aiohttp.ClientOSError(104, "reset"), httpx.ReadError, False),
        (aiohttp.ClientError("other"), httpx.TransportError, False),
    ],
)
def test_aiohttp_errors_map_to_httpx_errors_of_the_right_phase(
    exc: aiohttp.ClientError, expected: type[httpx.TransportError], connect_phase: bool
) -> None:
    request = httpx.Request("POST", "http://127.0.0.1/")
    mapped = _map_error(exc, request)
    assert type(mapped) is expected and mapped.request is request
    assert error_from_transport(mapped).connect_phase is connect_phase


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_env_proxy_follows_the_environment(no_proxy_env: pytest.MonkeyPatch) -> None:
    assert env_proxy("https://visual.volcengineapi.com") is None
    no_proxy_env.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert env_proxy("https://visual.volcengineapi.com") == "http://proxy.internal:3128"
    assert env_proxy("http://127.0.0.1:8080") is None  # no HTTP_PROXY
    no_proxy_env.setenv("NO_PROXY", "volcengineapi.com")
    assert env_proxy("https://visual.volcengineapi.com") is None
    assert make_transport(endpoint="https://visual.volcengineapi.com").proxy is None  # type: ignore[attr-defined]


async def test_aiohttp_transport_serves_an_httpx_client_too(running: RunningEmulator) -> None:
    """Outside PortraitClient it is a plain httpx transport: here under httpx.AsyncClient and our Auth."""
    from api_client.auth import VolcengineAuth

    auth = VolcengineAuth(AK, SK, region="cn-north-1", service="cv")
    params = {"Action": RESULT, "Version": "2022-08-31"}
    async with httpx.AsyncClient(transport=AiohttpTransport(), auth=auth) as client:
        body = {"req_key": "x", "task_id": "1"}
        answer = await client.post(f"{running.base_url}/", params=params, json=body)
        assert answer.status_code == 400 and answer.json()["code"] == 50201  # signed, then judged on the body
        assert answer.headers["content-type"] == "application/json"
        with pytest.raises(httpx.ConnectError):
            await client.get("http://127.0.0.1:1/")
