"""The two actions, their response shapes, and the task lifecycle on a fake clock."""

import base64
import io
import re

from PIL import Image

from ._support import REQ_KEY, RESULT, SUBMIT, EmulatorClient, b64, image_bytes


async def test_submit_answers_success_shape_with_a_task_id(emu: EmulatorClient) -> None:
    response = await emu.submit()
    body = response.json()
    assert response.status_code == 200
    assert body["code"] == body["status"] == 10000
    assert body["message"] == "Success"
    assert re.fullmatch(r"\d{19}", body["data"]["task_id"])
    assert re.fullmatch(r"\d{14}[0-9A-F]{20}", body["request_id"])
    assert re.fullmatch(r"[\d.]+(µs|ms|s)", body["time_elapsed"])
    assert response.headers["X-Tt-Logid"] == body["request_id"]


async def test_lifecycle_follows_the_clock(emu: EmulatorClient) -> None:
    task_id = await emu.submit_id()
    seen = []
    for step in (0.0, 1.9, 0.2, 4.8, 0.1):  # queue 2 s, generate 5 s
        emu.time.advance(step)
        seen.append((await emu.result(task_id)).json()["data"]["status"])
    assert seen == ["in_queue", "in_queue", "generating", "generating", "done"]


async def test_done_returns_a_jpeg_of_the_requested_size(emu: EmulatorClient) -> None:
    task_id = await emu.submit_id(width=640, height=900)
    emu.time.advance(10)
    response = await emu.result(task_id)
    data = response.json()["data"]
    assert response.status_code == 200 and response.json()["code"] == 10000
    assert data["status"] == "done"
    assert data["algorithm_base_resp"] == {"status_code": 0, "status_message": "Success"}
    picture = Image.open(io.BytesIO(base64.b64decode(data["binary_data_base64"][0])))
    assert (picture.format, picture.size) == ("JPEG", (640, 900))


async def test_pending_statuses_carry_no_images(emu: EmulatorClient) -> None:
    data = (await emu.result(await emu.submit_id())).json()["data"]
    assert data["status"] == "in_queue"
    assert not data["binary_data_base64"]


async def test_zero_timings_are_done_at_once(emu: EmulatorClient) -> None:
    emu.state.config.queue_seconds = emu.state.config.generate_seconds = 0
    task_id = await emu.submit_id()
    assert (await emu.result(task_id)).json()["data"]["status"] == "done"


async def test_unknown_task_is_not_found_with_success_code(emu: EmulatorClient) -> None:
    response = await emu.result("1234567890123456789")
    assert response.status_code == 200
    assert response.json()["code"] == 10000
    assert response.json()["data"]["status"] == "not_found"


async def test_tasks_expire_after_twelve_hours(emu: EmulatorClient) -> None:
    task_id = await emu.submit_id()
    emu.time.advance(12 * 3600 - 1)
    assert (await emu.result(task_id)).json()["data"]["status"] == "done"
    emu.time.advance(2)
    assert (await emu.result(task_id)).json()["data"]["status"] == "not_found"
    assert task_id not in emu.state.tasks


async def test_not_found_window_right_after_submit(emu: EmulatorClient) -> None:
    emu.state.config.not_found_window = 1.5
    task_id = await emu.submit_id()
    assert (await emu.result(task_id)).json()["data"]["status"] == "not_found"
    emu.time.advance(1.6)
    assert (await emu.result(task_id)).json()["data"]["status"] == "in_queue"


async def test_return_url_serves_the_image(emu: EmulatorClient) -> None:
    task_id = await emu.submit_id()
    emu.time.advance(10)
    data = (await emu.result(task_id, {"return_url": True})).json()["data"]
    [url] = data["image_urls"]
    assert url.startswith("http://emulator.test/emulator/images/") and url.endswith(".jpg")
    assert data["binary_data_base64"] == []
    fetched = await emu.http.get(url)
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/jpeg"
    plain = (await emu.result(task_id)).json()["data"]["binary_data_base64"][0]
    assert fetched.content == base64.b64decode(plain)


async def test_missing_image_url_is_404(emu: EmulatorClient) -> None:
    assert (await emu.http.get("/emulator/images/nope.jpg")).status_code == 404


async def test_unknown_action_or_version_is_the_gateway_404(emu: EmulatorClient) -> None:
    for action, version in (("CVProcess", "2022-08-31"), (SUBMIT, "2020-08-26")):
        response = await emu.call(action, {"req_key": "x"}, version=version)
        error = response.json()["ResponseMetadata"]["Error"]
        assert response.status_code == 404
        assert (error["CodeN"], error["Code"]) == (100008, "InvalidActionOrVersion")
        assert response.json()["ResponseMetadata"]["Action"] == action


async def test_missing_action_is_gateway_missing_parameter(emu: EmulatorClient) -> None:
    response = await emu.http.post("/?Version=2022-08-31", content=b"{}")
    assert response.status_code == 400
    assert response.json()["ResponseMetadata"]["Error"]["CodeN"] == 100002


async def test_image_urls_input_accepts_data_urls_and_emulator_images(emu: EmulatorClient) -> None:
    data_url = "data:image/png;base64," + b64(image_bytes())
    first = await emu.call(SUBMIT, {"req_key": REQ_KEY, "image_urls": [data_url]})
    assert first.json()["code"] == 10000
    emu.time.advance(10)
    [own_url] = (await emu.result(first.json()["data"]["task_id"], {"return_url": True})).json()["data"][
        "image_urls"
    ]
    second = await emu.call(SUBMIT, {"req_key": REQ_KEY, "image_urls": [own_url]})
    assert second.json()["code"] == 10000


async def test_internet_image_urls_cannot_be_fetched(emu: EmulatorClient) -> None:
    body: dict[str, object] = {"req_key": REQ_KEY, "image_urls": ["https://example.com/face.jpg"]}
    response = await emu.call(SUBMIT, body)
    assert (response.status_code, response.json()["code"]) == (400, 50207)


async def test_counters_and_call_log(emu: EmulatorClient) -> None:
    task_id = await emu.submit_id()
    await emu.result(task_id)
    await emu.submit(width=10)
    assert emu.state.submits_received == 2
    assert emu.state.received[RESULT] == 1
    assert len(emu.state.tasks) == 1
    assert [(c.action, c.http_status, c.code) for c in emu.state.calls] == [
        (SUBMIT, 200, 10000),
        (RESULT, 200, 10000),
        (SUBMIT, 400, 50200),
    ]


async def test_expired_tasks_and_their_images_are_purged_on_submit(emu: EmulatorClient) -> None:
    old = await emu.submit_id()
    emu.time.advance(10)
    await emu.result(old, {"return_url": True})
    assert any(key.startswith(old) for key in emu.state.images)
    emu.time.advance(12 * 3600)
    await emu.submit_id()
    assert old not in emu.state.tasks
    assert not any(key.startswith(old) for key in emu.state.images)
