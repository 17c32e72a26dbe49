"""The deterministic triggers of ARCHITECTURE.md "Emulator triggers"."""

import pytest

from ._support import EmulatorClient, b64, image_bytes


@pytest.mark.parametrize(
    "prompt, code",
    [("a RISKY portrait", 50412), ("blocklisted name", 50413), ("risky and blocklisted", 50412)],
)
async def test_prompt_triggers_answer_at_submit(emu: EmulatorClient, prompt: str, code: int) -> None:
    response = await emu.submit(positive_prompt=prompt)
    assert (response.status_code, response.json()["code"]) == (400, code)
    assert not emu.state.tasks


async def test_magenta_centre_is_an_input_image_risk(emu: EmulatorClient) -> None:
    response = await emu.submit(binary_data_base64=[b64(image_bytes(centre=(255, 0, 255)))])
    assert (response.status_code, response.json()["code"], response.json()["message"]) == (
        400, 50411, "Pre Img Risk Not Pass"
    )


async def test_magenta_survives_jpeg_and_hits_any_image(emu: EmulatorClient) -> None:
    style = b64(image_bytes(fmt="JPEG", centre=(255, 0, 255)))
    response = await emu.submit(binary_data_base64=[b64(image_bytes()), style])
    assert response.json()["code"] == 50411


async def test_near_magenta_is_not_a_trigger(emu: EmulatorClient) -> None:
    response = await emu.submit(binary_data_base64=[b64(image_bytes(centre=(200, 0, 200)))])
    assert response.json()["code"] == 10000


@pytest.mark.parametrize(
    "seed, http_status, message",
    [
        (50511, 400, "Post Img Risk Not Pass"),
        (50512, 400, "Post Text Risk Not Pass"),
        (50519, 400, "Post Copyright Risk Not Pass"),
        (60102, 400, "No Face Detected"),
        (50500, 500, "Internal Error"),
    ],
)
async def test_seed_triggers_fail_the_done_task(
    emu: EmulatorClient, seed: int, http_status: int, message: str
) -> None:
    task_id = await emu.submit_id(seed=seed)
    assert (await emu.result(task_id)).json()["data"]["status"] == "in_queue"
    emu.time.advance(3)
    assert (await emu.result(task_id)).json()["data"]["status"] == "generating"
    emu.time.advance(5)
    response = await emu.result(task_id)
    body = response.json()
    assert (response.status_code, body["code"], body["status"], body["message"]) == (
        http_status, seed, seed, message
    )
    assert body["data"] is None


async def test_other_seeds_succeed(emu: EmulatorClient) -> None:
    task_id = await emu.submit_id(seed=50510)
    emu.time.advance(10)
    assert (await emu.result(task_id)).json()["code"] == 10000
