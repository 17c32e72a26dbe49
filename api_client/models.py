"""The request and result shapes of the portrait API, with every api.md rule checked locally.

A submit is billed, and the service's 400s are vague ("bad parameters"). So `SubmitRequest.to_body()` checks
every documented rule before anything is sent and names the rule it broke in `LocalValidationError.rule`.
The rule names are stable strings a caller may switch on (see `RULES`).

Size units: api.md gives limits in "MB" without saying which. We read MB as 10**6 bytes (4.7 MB = 4_700_000,
8 MB = 8_000_000), the smaller of the two readings, so a request we accept is within either.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import pybase64

from api_client.errors import ImageRejected, LocalValidationError
from api_client.images import (
    MAX_BASE64_BYTES,
    MAX_SIDE,
    MIN_SIDE,
    base64_length,
    read_header_size,
    sniff_format,
)

__all__ = [
    "DEFAULT_PROMPT",
    "MAX_TOTAL_BASE64_BYTES",
    "REQ_KEY",
    "RULES",
    "SubmitRequest",
    "TaskResult",
    "TaskStatus",
    "Watermark",
]

REQ_KEY: Final = "img2img_anime_accelerated_maintain_id"
DEFAULT_PROMPT: Final = "1girl,beautiful,looking at viewer,portrait,"

#: api.md: "at most 8 MB for two images" (10**6 bytes per MB, see the module docstring).
MAX_TOTAL_BASE64_BYTES: Final = 8_000_000
#: The request has two image roles (face, style), and the 8 MB rule speaks of two images.
MAX_IMAGES: Final = 2
#: Formats the service accepts. Anything else goes through images.prepare_image first.
ACCEPTED_FORMATS: Final = frozenset({"jpeg", "png", "bmp"})
OUTPUT_SIDE_RANGE: Final = (600, 1500)
#: Not published upstream; local sanity bounds so an obviously broken value never costs a request.
STEP_RANGE: Final = (1, 100)
CFG_RANGE: Final = (0.0, 30.0)
MAX_SEED: Final = 2**63 - 1
MAX_PROMPT_CHARS: Final = 2000

#: Every rule `to_body()` / `Watermark` may report, with what it means.
RULES: Final[Mapping[str, str]] = {
    "image_source": "give images as bytes or as URLs, never both",
    "image_required": "at least one image is required",
    "image_count": f"at most {MAX_IMAGES} images (face and style)",
    "image_format": "each image must be JPEG, PNG or BMP",
    "image_dimensions": f"each image side must be {MIN_SIDE}..{MAX_SIDE} px",
    "image_base64_size": f"each image must be at most {MAX_BASE64_BYTES} bytes as base64",
    "total_base64_size": f"all images together must be at most {MAX_TOTAL_BASE64_BYTES} bytes as base64",
    "image_url": "image URLs must be non-empty http(s) URLs",
    "output_size": f"width and height must each be {OUTPUT_SIDE_RANGE[0]}..{OUTPUT_SIDE_RANGE[1]}",
    "hyper_switch": "hyper_switch requires face_switch, facestyle_switch and style_switch all off",
    "face_image_required": "face_switch, facestyle_switch and style_switch need a face image",
    "style_image_required": "style_switch needs a style image",
    "facestyle_or_style": "facestyle_switch and style_switch cannot both be on",
    "image_index": "face/style image indexes must point inside the images array",
    "seed": "seed must be an integer >= -1 (-1 means random)",
    "step": f"step must be an integer in {STEP_RANGE[0]}..{STEP_RANGE[1]}",
    "cfg": f"cfg must be a number in ({CFG_RANGE[0]}, {CFG_RANGE[1]}]",
    "positive_prompt": f"positive_prompt must be a non-empty string of at most {MAX_PROMPT_CHARS} characters",
    "switch_type": "switches must be booleans",
    "watermark_position": "watermark position must be 0..3",
    "watermark_language": "watermark language must be 0 (Chinese) or 1 (English)",
    "watermark_opacity": "watermark opacity must be a number in 0..1",
}


def _fail(rule: str, detail: str = "") -> LocalValidationError:
    message = RULES[rule] + (f" ({detail})" if detail else "")
    return LocalValidationError(f"{rule}: {message}", rule=rule)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _image_uri(index: int) -> str:
    return f"uri://binary_data?index={index}"


class TaskStatus(StrEnum):
    """`data.status` of GetResult."""

    IN_QUEUE = "in_queue"
    GENERATING = "generating"
    DONE = "done"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class TaskResult:
    """One GetResult answer. `images` (decoded JPEG/PNG bytes) are set only when status is DONE."""

    status: TaskStatus
    images: tuple[bytes, ...] = ()
    image_urls: tuple[str, ...] = ()
    request_id: str = ""


@dataclass(frozen=True)
class Watermark:
    """GetResult's `logo_info`: the "AI generated" mark. Checked at construction, so a bad one never polls."""

    add_logo: bool = True
    position: int = 0  # 0 bottom-right, 1 bottom-left, 2 top-left, 3 top-right
    language: int = 0  # 0 Chinese, 1 English
    opacity: float = 0.3

    def __post_init__(self) -> None:
        if not isinstance(self.add_logo, bool):
            raise _fail("switch_type", "add_logo")
        if not _is_int(self.position) or not 0 <= self.position <= 3:
            raise _fail("watermark_position", f"got {self.position!r}")
        if not _is_int(self.language) or self.language not in (0, 1):
            raise _fail("watermark_language", f"got {self.language!r}")
        opacity = self.opacity
        if isinstance(opacity, bool) or not isinstance(opacity, int | float) or not 0.0 <= opacity <= 1.0:
            raise _fail("watermark_opacity", f"got {opacity!r}")

    def to_req_json(self) -> str:
        """The `req_json` string of GetResult (JSON nested in JSON, compact)."""
        logo = {
            "add_logo": self.add_logo,
            "position": self.position,
            "language": self.language,
            "opacity": self.opacity,
        }
        return json.dumps({"logo_info": logo}, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class SubmitRequest:
    """CVSync2AsyncSubmitTask parameters. Construction never fails; `to_body()` validates."""

    images: tuple[bytes, ...] = ()
    image_urls: tuple[str, ...] = ()
    face_image_index: int | None = None
    style_image_index: int | None = None
    positive_prompt: str = DEFAULT_PROMPT
    hyper_switch: bool = False
    seed: int = -1
    step: int = 18
    cfg: float = 4.5
    face_switch: bool = False
    facestyle_switch: bool = False
    style_switch: bool = False
    width: int = 1000
    height: int = 1000
    #: Set by a `validate()` that passed. The request is frozen and so are its images (bytes), so a
    #: request once found valid stays valid: the bot validates before its state change, `to_body()` again
    #: before sending, and the second reading of every image header (Pillow, in the event loop) was waste.
    _valid: bool = field(default=False, init=False, repr=False, compare=False)

    @classmethod
    def from_images(cls, face: bytes, style: bytes | None = None, **options: Any) -> SubmitRequest:
        """Face image at index 0, optional style image at index 1; `options` are the other fields."""
        images = (face,) if style is None else (face, style)
        return cls(
            images=images,
            face_image_index=0,
            style_image_index=None if style is None else 1,
            **options,
        )

    def to_body(self) -> dict[str, object]:
        """The JSON body, after checking every api.md rule (LocalValidationError names the broken one)."""
        self.validate()
        body: dict[str, object] = {"req_key": REQ_KEY}
        if self.images:
            # pybase64: ~30x the standard library's speed on a multi-MB image, the same output.
            body["binary_data_base64"] = [pybase64.b64encode_as_string(raw) for raw in self.images]
        else:
            body["image_urls"] = list(self.image_urls)
        body.update(
            positive_prompt=self.positive_prompt,
            hyper_switch=self.hyper_switch,
            seed=self.seed,
            step=self.step,
            cfg=self.cfg,
        )
        if self.face_image_index is not None:
            body["face_image"] = _image_uri(self.face_image_index)
        if self.style_image_index is not None:
            body["style_image"] = _image_uri(self.style_image_index)
        body.update(
            face_switch=self.face_switch,
            facestyle_switch=self.facestyle_switch,
            style_switch=self.style_switch,
            width=self.width,
            height=self.height,
        )
        return body

    def validate(self) -> None:
        """Raise LocalValidationError for the first broken rule; cheap rules first, image headers last."""
        if self._valid:
            return
        self._validate_options()
        self._validate_switches()
        self._validate_sources()
        self._validate_images()
        object.__setattr__(self, "_valid", True)

    def _validate_options(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if not _is_int(value) or not OUTPUT_SIDE_RANGE[0] <= value <= OUTPUT_SIDE_RANGE[1]:
                raise _fail("output_size", f"{name}={value!r}")
        if not _is_int(self.seed) or not -1 <= self.seed <= MAX_SEED:
            raise _fail("seed", f"got {self.seed!r}")
        if not _is_int(self.step) or not STEP_RANGE[0] <= self.step <= STEP_RANGE[1]:
            raise _fail("step", f"got {self.step!r}")
        cfg = self.cfg
        if (
            isinstance(cfg, bool)
            or not isinstance(cfg, int | float)
            or not math.isfinite(cfg)
            or not CFG_RANGE[0] < cfg <= CFG_RANGE[1]
        ):
            raise _fail("cfg", f"got {cfg!r}")
        prompt = self.positive_prompt
        if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > MAX_PROMPT_CHARS:
            raise _fail("positive_prompt", f"length {len(prompt) if isinstance(prompt, str) else '?'}")

    def _validate_switches(self) -> None:
        for name in ("hyper_switch", "face_switch", "facestyle_switch", "style_switch"):
            if not isinstance(getattr(self, name), bool):
                raise _fail("switch_type", name)
        any_switch = self.face_switch or self.facestyle_switch or self.style_switch
        if self.hyper_switch and any_switch:
            raise _fail("hyper_switch")
        if self.facestyle_switch and self.style_switch:
            raise _fail("facestyle_or_style")
        if self.face_image_index is None and any_switch:
            raise _fail("face_image_required")
        if self.style_image_index is None and self.style_switch:
            raise _fail("style_image_required")

    def _validate_sources(self) -> None:
        if self.images and self.image_urls:
            raise _fail("image_source")
        count = len(self.images) or len(self.image_urls)
        if count == 0:
            raise _fail("image_required")
        if count > MAX_IMAGES:
            raise _fail("image_count", f"got {count}")
        for name in ("face_image_index", "style_image_index"):
            index = getattr(self, name)
            if index is not None and (not _is_int(index) or not 0 <= index < count):
                raise _fail("image_index", f"{name}={index!r} with {count} image(s)")
        for url in self.image_urls:
            if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) < 10:
                raise _fail("image_url", f"got {url!r:.60}")

    def _validate_images(self) -> None:
        total = 0
        for i, raw in enumerate(self.images):
            if not isinstance(raw, bytes | bytearray):
                raise _fail("image_format", f"image {i} is {type(raw).__name__}, not bytes")
            fmt = sniff_format(bytes(raw))
            if fmt not in ACCEPTED_FORMATS:
                raise _fail("image_format", f"image {i} is {fmt or 'not an image'}")
            size = base64_length(len(raw))
            if size > MAX_BASE64_BYTES:
                raise _fail("image_base64_size", f"image {i} is {size} bytes as base64")
            total += size
            try:
                width, height = read_header_size(bytes(raw))
            except ImageRejected as exc:
                raise _fail("image_dimensions", f"image {i}: {exc.reason}") from exc
            if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
                raise _fail("image_dimensions", f"image {i} is {width}x{height} px")
        if total > MAX_TOTAL_BASE64_BYTES:
            raise _fail("total_base64_size", f"{total} bytes")
