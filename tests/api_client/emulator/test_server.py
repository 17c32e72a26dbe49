"""The emulator on a real socket (uvicorn in a thread) and its command line."""

import json
from urllib.parse import urlencode

import httpx
import pytest

from api_client.emulator import EmulatorConfig, Fault, serve_in_thread
from api_client.emulator.__main__ import parse_args

from ._support import AK, REQ_KEY, SK, SUBMIT, EmulatorClient, image_bytes, sign_headers, submit_body


def _signed_submit(base_url: str, now: float, **fields: object) -> tuple[str, bytes, dict[str, str]]:
    body = json.dumps(submit_body(**fields)).encode()
    query = [("Action", SUBMIT), ("Version", "2022-08-31")]
    host = base_url.removeprefix("http://")
    return f"{base_url}/?{urlencode(query)}", body, sign_headers("POST", host, "/", query, body, now=now)


def test_real_server_answers_and_drops_without_a_response() -> None:
    config = EmulatorConfig(access_key=AK, secret_key=SK, queue_seconds=0, generate_seconds=0)
    with serve_in_thread(config) as running, httpx.Client() as client:
        url, body, headers = _signed_submit(running.base_url, config.clock(), positive_prompt="marker-7")
        ok = client.post(url, content=body, headers=headers)
        assert ok.status_code == 200 and ok.json()["code"] == 10000

        running.state.faults.push(Fault.DROP_AFTER, SUBMIT)
        with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
            client.post(url, content=body, headers=headers)
        assert running.state.submits_received == 2
        assert len(running.state.tasks) == 2
        assert client.get(f"{running.base_url}/emulator/health").json() == {"ok": True}
        submits = client.get(f"{running.base_url}/emulator/submits").json()
        assert submits["received"] == {SUBMIT: 2}
        assert [s["task_id"] for s in submits["accepted"]] == sorted(
            running.state.tasks, key=lambda i: running.state.tasks[i].submitted_at
        )
        assert [s["prompt"] for s in submits["accepted"]] == ["marker-7", "marker-7"]


def test_cli_flags_fill_the_config() -> None:
    config, host, port, _ = parse_args(
        ["--host", "0.0.0.0", "--port", "9000", "--access-key", "A", "--secret-key", "S",
         "--queue-seconds", "0", "--generate-seconds", "0.5", "--fault-rate-429", "0.1", "--drop-rate", "0.2",
         "--stuck-rate", "0.3", "--latency", "1.5", "--seed", "9"]
    )
    assert (host, port) == ("0.0.0.0", 9000)
    assert (config.access_key, config.secret_key) == ("A", "S")
    assert (config.queue_seconds, config.generate_seconds) == (0, 0.5)
    assert (config.fault_rate_429, config.drop_rate, config.stuck_rate) == (0.1, 0.2, 0.3)
    assert (config.latency_seconds, config.rng_seed) == (1.5, 9)


async def test_local_http_image_urls_are_fetched(emu: EmulatorClient) -> None:
    other = EmulatorConfig(access_key=AK, secret_key=SK, queue_seconds=0, generate_seconds=0)
    with serve_in_thread(other) as running:
        running.state.images["face"] = image_bytes(fmt="JPEG")
        url = f"{running.base_url}/emulator/images/face.jpg"
        fetched = await emu.call(SUBMIT, {"req_key": REQ_KEY, "image_urls": [url]})
        missing = await emu.call(SUBMIT, {"req_key": REQ_KEY, "image_urls": [url.replace("face", "gone")]})
    assert fetched.json()["code"] == 10000
    assert missing.json()["code"] == 50207


def test_the_client_drops_idle_connections_before_the_server_closes_them() -> None:
    """Regression: idle connections were kept 30 s while the server closes them after 5 s; a submit on a
    connection the server was just closing failed midway and ended as "submit outcome unknown"."""
    from api_client.emulator import create_app
    from api_client.emulator.server import build_server
    from api_client.transport import DEFAULT_LIMITS

    server = build_server(create_app(EmulatorConfig(access_key=AK, secret_key=SK)))
    assert DEFAULT_LIMITS.keepalive_expiry is not None
    assert DEFAULT_LIMITS.keepalive_expiry < server.config.timeout_keep_alive
