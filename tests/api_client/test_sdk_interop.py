"""The official Volcengine SDK, unmodified, against the emulator on a real socket.

If the SDK's own signer, URL building and response handling all work against the emulator, the emulator's
verifier and response shapes match the real service's contract closely enough for the client built on them.
"""

import base64
import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image, ImageDraw

from api_client.emulator import EmulatorConfig, RunningEmulator, serve_in_thread

visual = pytest.importorskip("volcengine.visual.VisualService")

AK, SK = "AKLTinteropExample", "SecretInteropExample=="
REQ_KEY = "img2img_anime_accelerated_maintain_id"


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    config = EmulatorConfig(access_key=AK, secret_key=SK, queue_seconds=0, generate_seconds=0)
    with serve_in_thread(config) as running:
        yield running


@pytest.fixture
def service(emulator: RunningEmulator) -> Any:
    sdk = visual.VisualService()
    sdk.set_ak(AK)
    sdk.set_sk(SK)
    sdk.set_host(f"127.0.0.1:{emulator.port}")
    sdk.set_scheme("http")
    return sdk


def _face_jpeg() -> str:
    picture = Image.new("RGB", (320, 320), (70, 110, 170))
    ImageDraw.Draw(picture).ellipse([80, 60, 240, 260], fill=(235, 195, 165))
    out = io.BytesIO()
    picture.save(out, "JPEG")
    return base64.b64encode(out.getvalue()).decode()


def test_sdk_submit_and_get_result_return_a_real_image(service: Any, emulator: RunningEmulator) -> None:
    submitted = service.cv_sync2async_submit_task(
        {"req_key": REQ_KEY, "binary_data_base64": [_face_jpeg()], "face_image": "uri://binary_data?index=0",
         "face_switch": True, "positive_prompt": "1girl, smile", "width": 640, "height": 800}
    )
    assert submitted["code"] == 10000, submitted
    task_id = submitted["data"]["task_id"]

    result = service.cv_sync2async_get_result(
        {"req_key": REQ_KEY, "task_id": task_id,
         "req_json": '{"logo_info": {"add_logo": true, "position": 0, "language": 1, "opacity": 0.5}}'}
    )
    assert result["code"] == 10000 and result["data"]["status"] == "done", result
    picture = Image.open(io.BytesIO(base64.b64decode(result["data"]["binary_data_base64"][0])))
    assert (picture.format, picture.size) == ("JPEG", (640, 800))
    assert emulator.state.submits_received >= 1


def test_sdk_sees_business_errors_as_the_service_sends_them(service: Any) -> None:
    with pytest.raises(Exception, match="50412"):
        service.cv_sync2async_submit_task(
            {"req_key": REQ_KEY, "binary_data_base64": [_face_jpeg()], "positive_prompt": "something risky"}
        )


def test_sdk_with_the_wrong_secret_is_refused_by_the_gateway(service: Any) -> None:
    service.set_sk("not-the-secret")
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        service.cv_sync2async_get_result({"req_key": REQ_KEY, "task_id": "1"})
