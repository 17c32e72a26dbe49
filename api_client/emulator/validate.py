"""Request-body rules of the real service, each failure mapped to its business code (see config.py).

The checks run in the order a request would meet them upstream: size, shape, required fields, image
limits, option rules, then image decoding; the risk triggers come after, in app.py.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes, urlsplit

import httpx
from PIL import Image

from api_client.emulator.config import (
    DEFAULT_PROMPT,
    MAX_IMAGE_BASE64,
    MAX_OUTPUT,
    MAX_SIDE,
    MAX_TOTAL_BASE64,
    MIN_OUTPUT,
    MIN_SIDE,
    REQ_KEY,
)
from api_client.emulator.render import LogoInfo

_INDEX_REF = re.compile(r"uri://binary_data\?index=(\d+)")
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_OWN_IMAGE = re.compile(r"/emulator/images/([A-Za-z0-9_-]+)\.jpg")
_FORMATS = frozenset({"JPEG", "PNG", "BMP"})


class BusinessError(Exception):
    """Answer with business ``code``; ``detail`` goes after the standard message."""

    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class SubmitSpec:
    images: tuple[bytes, ...]
    face_index: int | None
    style_index: int | None
    prompt: str
    seed: int
    width: int
    height: int


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    centre: tuple[int, int, int]


def parse_object(body: bytes, max_body_bytes: int) -> dict[str, object]:
    if len(body) > max_body_bytes:
        raise BusinessError(50213, f"body is {len(body)} bytes, limit {max_body_bytes}")
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BusinessError(50200, "body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise BusinessError(50200, "body is not a JSON object")
    return parsed


def check_req_key(body: dict[str, object]) -> None:
    if "req_key" not in body:
        raise BusinessError(50204, "req_key")
    if body["req_key"] != REQ_KEY:
        raise BusinessError(50201, "unknown req_key")


def _int(fields: dict[str, object], name: str, default: int) -> int:
    value = fields.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise BusinessError(50200, f"{name} must be an integer")
    return value


def _number(fields: dict[str, object], name: str, default: float) -> float:
    value = fields.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BusinessError(50200, f"{name} must be a number")
    return float(value)


def _bool(fields: dict[str, object], name: str) -> bool:
    value = fields.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BusinessError(50200, f"{name} must be a boolean")
    return value


def _str(fields: dict[str, object], name: str, default: str) -> str:
    value = fields.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise BusinessError(50200, f"{name} must be a string")
    return value


def _index_ref(body: dict[str, object], name: str, count: int) -> int | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    match = _INDEX_REF.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise BusinessError(50200, f"{name} must look like uri://binary_data?index=N")
    index = int(match.group(1))
    if index >= count:
        raise BusinessError(50215, f"{name} points past the {count} image(s) sent")
    return index


def _string_list(body: dict[str, object], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BusinessError(50200, f"{name} must be an array of strings")
    return value


def _check_sizes(sizes: list[int]) -> None:
    if any(size == 0 for size in sizes):
        raise BusinessError(50206, "empty image")
    if any(size > MAX_IMAGE_BASE64 for size in sizes):
        raise BusinessError(50205, "an image is over 4.7 MB in base64")
    if sum(sizes) > MAX_TOTAL_BASE64:
        raise BusinessError(50205, "the images are over 8 MB in base64 together")


def _base64_size(raw_length: int) -> int:
    return 4 * ((raw_length + 2) // 3)


def _decode_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BusinessError(50207, "binary_data_base64 is not valid base64") from None


async def _fetch_url(url: str, own_image: Callable[[str], bytes | None], fetch_local: bool) -> bytes:
    if url.startswith("data:"):
        header, sep, payload = url.partition(",")
        if not sep:
            raise BusinessError(50207, "malformed data: URL")
        return _decode_base64(payload) if header.endswith(";base64") else unquote_to_bytes(payload)
    parts = urlsplit(url)
    own = _OWN_IMAGE.fullmatch(parts.path)
    if own is not None and (found := own_image(own.group(1))) is not None:
        return found
    if parts.scheme in ("http", "https") and parts.hostname in _LOCAL_HOSTS and fetch_local:
        try:
            async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
                response = await client.get(url)
        except httpx.HTTPError:
            raise BusinessError(50207, "image URL could not be fetched") from None
        if response.status_code == 200:
            return response.content
    raise BusinessError(50207, "image URL could not be fetched (the emulator is offline)")


def _inspect(data: bytes) -> ImageInfo:
    """Decode far enough to check format and size before loading pixels (a bomb never gets loaded)."""
    try:
        image = Image.open(io.BytesIO(data))
        if image.format not in _FORMATS:
            raise BusinessError(50207, f"unsupported image format {image.format}")
        width, height = image.size
        if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
            raise BusinessError(50215, f"image is {width}x{height}, allowed {MIN_SIDE}..{MAX_SIDE}")
        rgb = image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise BusinessError(50207, "image could not be decoded") from None
    r, g, b = rgb.getpixel((width // 2, height // 2))  # type: ignore[misc]
    return ImageInfo(width, height, (int(r), int(g), int(b)))


async def read_submit(
    body: dict[str, object], own_image: Callable[[str], bytes | None], fetch_local: bool
) -> tuple[SubmitSpec, list[ImageInfo]]:
    """Validate a submit body (after ``check_req_key``) and decode its images."""
    encoded = _string_list(body, "binary_data_base64")
    urls = _string_list(body, "image_urls")
    if encoded and urls:
        raise BusinessError(50200, "send binary_data_base64 or image_urls, not both")
    if not encoded and not urls:
        raise BusinessError(50204, "binary_data_base64 or image_urls")
    if encoded:
        _check_sizes([len(item) for item in encoded])
    switches = {name: _bool(body, name) for name in
                ("hyper_switch", "face_switch", "facestyle_switch", "style_switch")}
    prompt = _str(body, "positive_prompt", DEFAULT_PROMPT)
    seed = _int(body, "seed", -1)
    _int(body, "step", 18)
    _number(body, "cfg", 4.5)
    width = _int(body, "width", 1000)
    height = _int(body, "height", 1000)
    if not (MIN_OUTPUT <= width <= MAX_OUTPUT and MIN_OUTPUT <= height <= MAX_OUTPUT):
        raise BusinessError(50200, f"width and height must be in [{MIN_OUTPUT}, {MAX_OUTPUT}]")
    count = len(encoded or urls or [])
    face_index = _index_ref(body, "face_image", count)
    style_index = _index_ref(body, "style_image", count)
    if switches["hyper_switch"] and (
        switches["face_switch"] or switches["facestyle_switch"] or switches["style_switch"]
    ):
        raise BusinessError(50215, "hyper_switch needs face_switch, facestyle_switch and style_switch off")
    if face_index is None and (
        switches["face_switch"] or switches["facestyle_switch"] or switches["style_switch"]
    ):
        raise BusinessError(50215, "the switches need face_image")
    if style_index is None and switches["style_switch"]:
        raise BusinessError(50215, "style_switch needs style_image")
    if switches["facestyle_switch"] and switches["style_switch"]:
        raise BusinessError(50215, "pick facestyle_switch or style_switch, not both")

    if encoded:
        images = [_decode_base64(item) for item in encoded]
    else:
        images = [await _fetch_url(url, own_image, fetch_local) for url in urls or []]
        _check_sizes([_base64_size(len(item)) for item in images])
    if any(not image for image in images):
        raise BusinessError(50206, "empty image")
    infos = [await asyncio.to_thread(_inspect, image) for image in images]
    spec = SubmitSpec(tuple(images), face_index, style_index, prompt, seed, width, height)
    return spec, infos


def read_req_json(body: dict[str, object]) -> tuple[LogoInfo, bool]:
    """GetResult's ``req_json`` string: the watermark and whether to answer with URLs."""
    raw = body.get("req_json")
    if raw is None or raw == "":
        return LogoInfo(), False
    if not isinstance(raw, str):
        raise BusinessError(50200, "req_json must be a JSON string")
    try:
        options = json.loads(raw)
    except ValueError:
        raise BusinessError(50200, "req_json is not valid JSON") from None
    if not isinstance(options, dict):
        raise BusinessError(50200, "req_json must hold a JSON object")
    logo = options.get("logo_info") or {}
    if not isinstance(logo, dict):
        raise BusinessError(50200, "logo_info must be an object")
    add_logo = _bool(logo, "add_logo")
    position = _int(logo, "position", 0)
    language = _int(logo, "language", 0)
    opacity = _number(logo, "opacity", 0.3)
    return_url = _bool(options, "return_url")
    if position not in (0, 1, 2, 3) or language not in (0, 1) or not 0.0 <= opacity <= 1.0:
        raise BusinessError(50200, "logo_info: position 0..3, language 0/1, opacity 0..1")
    return LogoInfo(add_logo, position, language, opacity), return_url
