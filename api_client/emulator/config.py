"""Emulator settings, the deterministic triggers, and the code table it answers from.

Triggers (deterministic, so the bot's friendly-reply tests can provoke every answer):

* ``positive_prompt`` containing ``risky`` (any case) -> 50412 "Text Risk Not Pass" at submit (HTTP 400).
* ``positive_prompt`` containing ``blocklisted`` -> 50413 at submit (HTTP 400).
* any input image whose centre pixel is magenta ``(255, 0, 255)`` (each channel within
  ``MAGENTA_TOLERANCE``, so the trigger survives the client's JPEG re-encode) -> 50411 at submit.
* ``seed`` equal to 50511, 50512, 50519, 60102 or 50500 -> the task is accepted, runs through
  ``in_queue``/``generating`` as usual, and GetResult on the ``done`` task answers that code, its message
  and its HTTP status (400, or 500 for 50500) instead of an image.

Validation codes (chosen where api.md lumps several together):

* 50200 Invalid Parameter: body not a JSON object, a field of the wrong type, width/height outside
  [600, 1500], a malformed ``uri://binary_data?index=N`` reference, both image arrays given, bad req_json.
* 50201 Invalid Req Key: ``req_key`` present but not ``img2img_anime_accelerated_maintain_id``.
* 50204 Missing Parameter: no ``req_key``, no images at all, no ``task_id``.
* 50205 image too large: one base64 string over 4.7 MB, or all of them over 8 MB.
* 50206 empty image; 50207 image decode error (bad base64, not JPEG/PNG/BMP, unfetchable URL).
* 50213 request body over ``max_body_bytes``.
* 50215 Input Invalid: image outside 128..4096 px, a switch rule broken, an index past the images array.

Image URLs: the emulator never touches the internet. ``data:`` URLs are decoded, URLs of the emulator's own
``/emulator/images/`` are read from memory, and ``http://127.0.0.1``/``localhost`` URLs are fetched with
httpx (``fetch_local_urls``). Anything else answers 50207, as the real service does for a URL it can't load.

Unknown Action/Version answers what the real gateway does: the gateway body with
100008 InvalidActionOrVersion, HTTP 404.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

REQ_KEY = "img2img_anime_accelerated_maintain_id"
VERSION = "2022-08-31"
SUBMIT_ACTION = "CVSync2AsyncSubmitTask"
RESULT_ACTION = "CVSync2AsyncGetResult"
ACTIONS = frozenset({SUBMIT_ACTION, RESULT_ACTION})
DEFAULT_PROMPT = "1girl,beautiful,looking at viewer,portrait,"

RISKY_WORD = "risky"
BLOCKLIST_WORD = "blocklisted"
MAGENTA = (255, 0, 255)
MAGENTA_TOLERANCE = 8
SEED_TRIGGERS = frozenset({50511, 50512, 50519, 60102, 50500})

MAX_IMAGE_BASE64 = 4_700_000
MAX_TOTAL_BASE64 = 8_000_000
MIN_SIDE, MAX_SIDE = 128, 4096
MIN_OUTPUT, MAX_OUTPUT = 600, 1500
TASK_TTL_SECONDS = 12 * 3600.0

# code -> (HTTP status, message); the messages of api.md where it gives them.
BUSINESS_CODES: dict[int, tuple[int, str]] = {
    10000: (200, "Success"),
    50200: (400, "Invalid Parameter"),
    50201: (400, "Invalid Req Key"),
    50204: (400, "Missing Parameter"),
    50205: (400, "Image Size Exceeds Limit"),
    50206: (400, "Empty Image"),
    50207: (400, "Image Decode Error"),
    50213: (400, "Request Body Too Large"),
    50215: (400, "Input Invalid"),
    50402: (404, "API Not Found"),
    50411: (400, "Pre Img Risk Not Pass"),
    50412: (400, "Text Risk Not Pass"),
    50413: (400, "Post Text Risk Not Pass"),
    50429: (429, "Request Has Reached API Limit, Please Try Later"),
    50430: (429, "Request Has Reached API Concurrent Limit, Please Try Later"),
    50500: (500, "Internal Error"),
    50501: (500, "Internal RPC Error"),
    50511: (400, "Post Img Risk Not Pass"),
    50512: (400, "Post Text Risk Not Pass"),
    50519: (400, "Post Copyright Risk Not Pass"),
    60102: (400, "No Face Detected"),
}

# Gateway errors: CodeN -> (HTTP status, Code), from Volcengine's public gateway error table.
GATEWAY_CODES: dict[int, tuple[int, str]] = {
    100002: (400, "MissingParameter"),
    100003: (401, "MissingAuthenticationToken"),
    100004: (400, "MissingRequestInfo"),
    100005: (401, "MissingSignature"),
    100006: (403, "InvalidTimestamp"),
    100008: (404, "InvalidActionOrVersion"),
    100009: (401, "InvalidAccessKey"),
    100010: (401, "SignatureDoesNotMatch"),
}


@dataclass
class EmulatorConfig:
    """Everything the emulator needs; the fault fields only seed ``app.state.emulator.faults``."""

    access_key: str = "AK"
    secret_key: str = "SK"
    region: str = "cn-north-1"
    service: str = "cv"
    # Lifecycle: a task reads in_queue for queue_seconds, then generating for generate_seconds, then done.
    queue_seconds: float = 1.0
    generate_seconds: float = 3.0
    # Each task runs at its own pace: both phases scaled by one factor drawn uniformly from
    # [1 - generate_jitter, 1 + generate_jitter] at submit (0.3: "5 s +- 30 %"), from a RNG of rng_seed.
    generate_jitter: float = 0.0
    not_found_window: float = 0.0  # reads not_found for this long right after submit
    task_ttl_seconds: float = TASK_TTL_SECONDS
    max_clock_skew: float = 900.0  # X-Date may be this far from the clock, either way
    max_body_bytes: int = 10_000_000
    check_signature: bool = True
    fetch_local_urls: bool = True
    public_base_url: str | None = None  # base of image_urls; default: the request's own base URL
    # Faults (see faults.py); rates are probabilities per request, drawn from a RNG seeded by rng_seed.
    fault_rate_429: float = 0.0
    fault_rate_430: float = 0.0
    fault_rate_500: float = 0.0
    drop_rate: float = 0.0
    drop_after_processing: bool = False  # a dropped submit still creates its task (outcome unknown)
    stuck_rate: float = 0.0  # submitted tasks that never leave in_queue
    latency_seconds: float = 0.0
    rng_seed: int = 0
    # Injected time: the wall clock (epoch seconds) and the sleep used for added latency.
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def __post_init__(self) -> None:
        if not 0.0 <= self.generate_jitter < 1.0:
            raise ValueError(f"generate_jitter must be in [0, 1): {self.generate_jitter!r}")
