"""SubmitRequest / Watermark: every api.md rule is accepted at its edge and refused just past it."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from typing import Any

import pytest
from PIL import Image

from api_client.errors import InvalidRequest, LocalValidationError
from api_client.models import (
    DEFAULT_PROMPT,
    REQ_KEY,
    RULES,
    SubmitRequest,
    TaskResult,
    TaskStatus,
    Watermark,
)


def encode(size: tuple[int, int], fmt: str = "JPEG", mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, "white").save(buffer, format=fmt)
    return buffer.getvalue()


FACE = encode((256, 256))
STYLE = encode((256, 256), "PNG")
URL_A = "https://example.com/a.jpg"
URL_B = "https://example.com/b.jpg"


def rule_of(request: SubmitRequest) -> str:
    with pytest.raises(LocalValidationError) as info:
        request.to_body()
    assert info.value.rule in RULES
    assert info.value.rule in info.value.message  # the message names the rule
    assert info.value.code is None
    return info.value.rule


def test_defaults_match_api_md() -> None:
    body = SubmitRequest.from_images(FACE).to_body()
    assert body["req_key"] == REQ_KEY == "img2img_anime_accelerated_maintain_id"
    assert body["positive_prompt"] == DEFAULT_PROMPT == "1girl,beautiful,looking at viewer,portrait,"
    options = (body["seed"], body["step"], body["cfg"], body["width"], body["height"])
    assert options == (-1, 18, 4.5, 1000, 1000)
    assert body["hyper_switch"] is False
    assert body["face_switch"] is body["facestyle_switch"] is body["style_switch"] is False


def test_from_images_sets_indexes_and_base64() -> None:
    body = SubmitRequest.from_images(FACE, STYLE, face_switch=True, style_switch=True, seed=7).to_body()
    assert body["binary_data_base64"] == [base64.b64encode(FACE).decode(), base64.b64encode(STYLE).decode()]
    assert body["face_image"] == "uri://binary_data?index=0"
    assert body["style_image"] == "uri://binary_data?index=1"
    assert body["seed"] == 7
    assert "image_urls" not in body
    json.dumps(body)  # serialisable as is


def test_body_without_face_or_style_omits_the_fields() -> None:
    body = SubmitRequest(images=(FACE,)).to_body()
    assert "face_image" not in body and "style_image" not in body


def test_urls_are_sent_as_image_urls() -> None:
    body = SubmitRequest(image_urls=(URL_A, URL_B), face_image_index=1, face_switch=True).to_body()
    assert body["image_urls"] == [URL_A, URL_B]
    assert body["face_image"] == "uri://binary_data?index=1"
    assert "binary_data_base64" not in body


ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("face only, all switches off", {"images": (FACE,)}),
    ("face switch", {"images": (FACE,), "face_image_index": 0, "face_switch": True}),
    ("facestyle switch", {"images": (FACE,), "face_image_index": 0, "facestyle_switch": True}),
    (
        "face + style switches",
        {"images": (FACE, STYLE), "face_image_index": 0, "style_image_index": 1,
         "face_switch": True, "style_switch": True},
    ),
    ("hyper with switches off", {"images": (FACE,), "face_image_index": 0, "hyper_switch": True}),
    ("style image without switch", {"images": (FACE, STYLE), "face_image_index": 0, "style_image_index": 1}),
    ("urls", {"image_urls": (URL_A,), "face_image_index": 0, "face_switch": True}),
    ("width 600", {"images": (FACE,), "width": 600}),
    ("height 1500", {"images": (FACE,), "height": 1500}),
    ("seed -1", {"images": (FACE,), "seed": -1}),
    ("seed 0", {"images": (FACE,), "seed": 0}),
    ("seed large", {"images": (FACE,), "seed": 2**40}),
    ("step 1", {"images": (FACE,), "step": 1}),
    ("cfg int", {"images": (FACE,), "cfg": 7}),
    ("png", {"images": (encode((200, 200), "PNG"),)}),
    ("bmp", {"images": (encode((200, 200), "BMP"),)}),
    ("128 px edge", {"images": (encode((128, 128)),)}),
    ("4096 px edge", {"images": (encode((4096, 128)),)}),
    ("custom prompt", {"images": (FACE,), "positive_prompt": "1boy, smiling"}),
]


@pytest.mark.parametrize(("label", "fields"), ACCEPTED, ids=[label for label, _ in ACCEPTED])
def test_accepted(label: str, fields: dict[str, Any]) -> None:
    body = SubmitRequest(**fields).to_body()
    assert body["req_key"] == REQ_KEY


REJECTED: list[tuple[str, dict[str, Any]]] = [
    ("image_source", {"images": (FACE,), "image_urls": (URL_A,)}),
    ("image_required", {}),
    ("image_count", {"images": (FACE, FACE, FACE)}),
    ("image_format", {"images": (encode((200, 200), "GIF", "P"),)}),
    ("image_format", {"images": (encode((200, 200), "WEBP"),)}),
    ("image_format", {"images": (b"definitely not an image",)}),
    ("image_dimensions", {"images": (encode((127, 300)),)}),
    ("image_dimensions", {"images": (encode((4097, 200)),)}),
    ("image_dimensions", {"images": (b"\xff\xd8\xff\xe0" + b"\x00" * 64,)}),  # JPEG magic, no header
    ("image_url", {"image_urls": ("ftp://example.com/a.jpg",)}),
    ("image_url", {"image_urls": ("",)}),
    ("output_size", {"images": (FACE,), "width": 599}),
    ("output_size", {"images": (FACE,), "height": 1501}),
    ("output_size", {"images": (FACE,), "width": 1000.0}),
    ("hyper_switch", {"images": (FACE,), "face_image_index": 0, "hyper_switch": True, "face_switch": True}),
    (
        "hyper_switch",
        {"images": (FACE,), "face_image_index": 0, "hyper_switch": True, "facestyle_switch": True},
    ),
    (
        "hyper_switch",
        {"images": (FACE, STYLE), "face_image_index": 0, "style_image_index": 1,
         "hyper_switch": True, "style_switch": True},
    ),
    ("face_image_required", {"images": (FACE,), "face_switch": True}),
    ("face_image_required", {"images": (FACE,), "facestyle_switch": True}),
    ("face_image_required", {"images": (FACE, STYLE), "style_image_index": 1, "style_switch": True}),
    ("style_image_required", {"images": (FACE,), "face_image_index": 0, "style_switch": True}),
    (
        "facestyle_or_style",
        {"images": (FACE, STYLE), "face_image_index": 0, "style_image_index": 1,
         "facestyle_switch": True, "style_switch": True},
    ),
    ("image_index", {"images": (FACE,), "face_image_index": 1}),
    ("image_index", {"images": (FACE,), "face_image_index": -1}),
    ("image_index", {"images": (FACE,), "face_image_index": 0, "style_image_index": 1}),
    ("image_index", {"image_urls": (URL_A,), "face_image_index": 2}),
    ("seed", {"images": (FACE,), "seed": -2}),
    ("seed", {"images": (FACE,), "seed": 1.5}),
    ("seed", {"images": (FACE,), "seed": True}),
    ("step", {"images": (FACE,), "step": 0}),
    ("step", {"images": (FACE,), "step": 101}),
    ("cfg", {"images": (FACE,), "cfg": 0}),
    ("cfg", {"images": (FACE,), "cfg": -1.0}),
    ("cfg", {"images": (FACE,), "cfg": float("nan")}),
    ("cfg", {"images": (FACE,), "cfg": 31.0}),
    ("positive_prompt", {"images": (FACE,), "positive_prompt": "   "}),
    ("positive_prompt", {"images": (FACE,), "positive_prompt": "x" * 2001}),
    ("switch_type", {"images": (FACE,), "face_image_index": 0, "face_switch": 1}),
]


@pytest.mark.parametrize(("rule", "fields"), REJECTED, ids=[f"{r}-{i}" for i, (r, _) in enumerate(REJECTED)])
def test_rejected(rule: str, fields: dict[str, Any]) -> None:
    assert rule_of(SubmitRequest(**fields)) == rule


def test_every_submit_rule_has_a_rejection_case() -> None:
    covered = {rule for rule, _ in REJECTED} | {"image_base64_size", "total_base64_size"}
    watermark_rules = {rule for rule in RULES if rule.startswith("watermark_")}
    assert set(RULES) - watermark_rules == covered


def noise_jpeg(size: tuple[int, int]) -> bytes:
    """A JPEG that barely compresses: random pixels at quality 100."""
    import random

    rng = random.Random(1)
    image = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=100)
    return buffer.getvalue()


def test_base64_size_limits() -> None:
    big = noise_jpeg((1300, 1300))  # ~4.5 MB as base64: under 4.7 MB, but two of them exceed 8 MB
    assert 4_000_000 < len(base64.b64encode(big)) <= 4_700_000
    SubmitRequest(images=(big,)).to_body()
    too_big = noise_jpeg((1400, 1400))
    assert len(base64.b64encode(too_big)) > 4_700_000
    assert rule_of(SubmitRequest(images=(too_big,))) == "image_base64_size"
    assert rule_of(SubmitRequest(images=(big, big))) == "total_base64_size"


def test_validation_happens_before_encoding_and_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        SubmitRequest(images=(FACE,), width=10).to_body()


def test_a_request_reads_its_image_headers_once_however_often_it_is_validated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bot validates before it commits to a submit and `to_body()` validates again before sending; the
    request and its images are immutable, so the second reading of every header was waste. A copy with a
    field changed is a new request, checked again."""
    from api_client import models

    reads: list[int] = []
    read = models.read_header_size

    def counted(raw: bytes) -> tuple[int, int]:
        reads.append(len(raw))
        return read(raw)

    monkeypatch.setattr(models, "read_header_size", counted)
    request = SubmitRequest.from_images(FACE, STYLE, face_switch=True)
    request.validate()
    request.to_body()
    assert len(reads) == 2  # face and style, once each
    assert request == SubmitRequest.from_images(FACE, STYLE, face_switch=True)  # validity is no field
    assert rule_of(dataclasses.replace(request, width=10)) == "output_size"
    dataclasses.replace(request, seed=7).to_body()
    assert len(reads) == 4


def test_request_is_frozen() -> None:
    request = SubmitRequest.from_images(FACE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.seed = 3  # type: ignore[misc]


def test_watermark_req_json() -> None:
    text = Watermark(position=1, language=1, opacity=0.5).to_req_json()
    assert json.loads(text) == {"logo_info": {"add_logo": True, "position": 1, "language": 1, "opacity": 0.5}}
    assert " " not in text


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"position": 4}, "watermark_position"),
        ({"position": -1}, "watermark_position"),
        ({"language": 2}, "watermark_language"),
        ({"opacity": 1.01}, "watermark_opacity"),
        ({"opacity": -0.1}, "watermark_opacity"),
        ({"add_logo": "yes"}, "switch_type"),
    ],
)
def test_watermark_rejected(fields: dict[str, Any], rule: str) -> None:
    with pytest.raises(LocalValidationError) as info:
        Watermark(**fields)
    assert info.value.rule == rule


@pytest.mark.parametrize("fields", [{"position": 3}, {"language": 1}, {"opacity": 0}, {"opacity": 1.0}])
def test_watermark_accepted(fields: dict[str, Any]) -> None:
    assert json.loads(Watermark(**fields).to_req_json())["logo_info"]


def test_task_status_values_and_result_defaults() -> None:
    assert [s.value for s in TaskStatus] == ["in_queue", "generating", "done", "not_found"]
    result = TaskResult(TaskStatus.IN_QUEUE)
    assert result.images == () and result.image_urls == () and result.request_id == ""
