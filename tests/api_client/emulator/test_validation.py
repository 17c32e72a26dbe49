"""Each body rule of api.md answers its business code and HTTP status."""

import base64
from typing import Any

import pytest

from ._support import REQ_KEY, RESULT, SUBMIT, EmulatorClient, b64, image_bytes

FACE = "uri://binary_data?index=0"
STYLE = "uri://binary_data?index=1"
TWO = [b64(image_bytes()), b64(image_bytes())]

CASES: dict[str, tuple[dict[str, Any], int]] = {
    "wrong type of seed": ({"seed": "7"}, 50200),
    "bool as int": ({"width": True}, 50200),
    "switch not a bool": ({"face_switch": 1}, 50200),
    "width too small": ({"width": 599}, 50200),
    "height too large": ({"height": 1501}, 50200),
    "both image arrays": ({"image_urls": ["data:image/png;base64,AAAA"]}, 50200),
    "malformed reference": ({"face_image": "binary_data[0]"}, 50200),
    "images not strings": ({"binary_data_base64": [1]}, 50200),
    "no images": ({"binary_data_base64": []}, 50204),
    "reference past the array": ({"face_image": "uri://binary_data?index=1"}, 50215),
    "hyper with face switch": ({"hyper_switch": True, "face_switch": True, "face_image": FACE}, 50215),
    "switch without face_image": ({"face_switch": True}, 50215),
    "style switch without style_image": ({"style_switch": True, "face_image": FACE}, 50215),
    "facestyle and style together": (
        {"binary_data_base64": TWO, "face_image": FACE, "style_image": STYLE,
         "facestyle_switch": True, "style_switch": True},
        50215,
    ),
    "empty image": ({"binary_data_base64": [""]}, 50206),
    "not base64": ({"binary_data_base64": ["@@not base64@@"]}, 50207),
    "not an image": ({"binary_data_base64": [b64(b"hello, world, not a picture")]}, 50207),
    "gif is unsupported": ({"binary_data_base64": [b64(image_bytes(fmt="GIF"))]}, 50207),
    "image too small": ({"binary_data_base64": [b64(image_bytes((100, 300)))]}, 50215),
    "one image over 4.7 MB": ({"binary_data_base64": ["A" * 4_700_004]}, 50205),
    "two images over 8 MB": ({"binary_data_base64": ["A" * 4_000_000, "A" * 4_000_004]}, 50205),
}


@pytest.mark.parametrize("fields, code", CASES.values(), ids=CASES.keys())
async def test_submit_rule(emu: EmulatorClient, fields: dict[str, object], code: int) -> None:
    response = await emu.submit(**fields)
    assert (response.status_code, response.json()["code"], response.json()["status"]) == (400, code, code)
    assert response.json()["data"] is None
    assert not emu.state.tasks


async def test_valid_combinations_are_accepted(emu: EmulatorClient) -> None:
    ok: list[dict[str, object]] = [
        {"face_image": FACE, "face_switch": True},
        {"binary_data_base64": TWO, "face_image": FACE, "style_image": STYLE, "style_switch": True},
        {"face_image": FACE, "facestyle_switch": True, "width": 600, "height": 1500},
        {"hyper_switch": True, "seed": 42, "step": 8, "cfg": 3},
        {"binary_data_base64": [b64(image_bytes((128, 4096), fmt="JPEG"))]},
        {"binary_data_base64": [b64(image_bytes(fmt="BMP"))]},
    ]
    for fields in ok:
        response = await emu.submit(**fields)
        assert response.json()["code"] == 10000, (fields, response.text)


async def test_image_over_4096_is_rejected(emu: EmulatorClient) -> None:
    response = await emu.submit(binary_data_base64=[b64(image_bytes((4097, 128), fmt="JPEG"))])
    assert response.json()["code"] == 50215


async def test_missing_and_wrong_req_key(emu: EmulatorClient) -> None:
    missing = await emu.call(SUBMIT, {"binary_data_base64": [b64(image_bytes())]})
    wrong = await emu.call(SUBMIT, {"req_key": "other", "binary_data_base64": [b64(image_bytes())]})
    assert (missing.status_code, missing.json()["code"]) == (400, 50204)
    assert (wrong.status_code, wrong.json()["code"]) == (400, 50201)


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"\xff\xfe"])
async def test_body_must_be_a_json_object(emu: EmulatorClient, raw: bytes) -> None:
    response = await emu.raw(SUBMIT, raw)
    assert (response.status_code, response.json()["code"]) == (400, 50200)


async def test_body_over_the_limit_is_50213(emu: EmulatorClient) -> None:
    emu.state.config.max_body_bytes = 1000
    response = await emu.submit()
    assert (response.status_code, response.json()["code"]) == (400, 50213)


async def test_default_body_limit_is_above_two_full_images(emu: EmulatorClient) -> None:
    big = "A" * 4_700_000
    response = await emu.submit(binary_data_base64=[big, big, big])
    assert response.json()["code"] == 50213  # 14.1 MB body: over the limit before any image rule


async def test_get_result_rules(emu: EmulatorClient) -> None:
    cases: list[tuple[dict[str, object], int]] = [
        ({"req_key": REQ_KEY}, 50204),
        ({"req_key": REQ_KEY, "task_id": 5}, 50200),
        ({"task_id": "1"}, 50204),
        ({"req_key": REQ_KEY, "task_id": "1", "req_json": "{"}, 50200),
        ({"req_key": REQ_KEY, "task_id": "1", "req_json": '{"logo_info": {"position": 4}}'}, 50200),
        ({"req_key": REQ_KEY, "task_id": "1", "req_json": '{"logo_info": {"language": 2}}'}, 50200),
        ({"req_key": REQ_KEY, "task_id": "1", "req_json": '{"logo_info": {"opacity": 1.5}}'}, 50200),
        ({"req_key": REQ_KEY, "task_id": "1", "req_json": '{"return_url": "yes"}'}, 50200),
    ]
    for body, code in cases:
        response = await emu.call(RESULT, body)
        assert (response.status_code, response.json()["code"]) == (400, code), body


async def test_truncated_image_is_a_decode_error(emu: EmulatorClient) -> None:
    data = image_bytes(fmt="JPEG")
    response = await emu.submit(binary_data_base64=[base64.b64encode(data[: len(data) // 2]).decode()])
    assert response.json()["code"] == 50207
