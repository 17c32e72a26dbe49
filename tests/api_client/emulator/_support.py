"""Test-side helpers: a tiny independent signer, a fake wall clock, images, and a client for the app.

The signer is written here from signing.md on purpose: it must not be api_client.auth (built elsewhere) nor
the emulator's verifier (the thing under test).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

import httpx
from PIL import Image, ImageDraw

from api_client.emulator import EmulatorConfig, EmulatorState, create_app

AK, SK = "AKtest", "SKtest"
REQ_KEY = "img2img_anime_accelerated_maintain_id"
START = 1_704_067_200.0  # 2024-01-01T00:00:00Z
SUBMIT = "CVSync2AsyncSubmitTask"
RESULT = "CVSync2AsyncGetResult"


class FakeTime:
    """The emulator's injected clock and sleep: time moves only when a test says so."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _enc(text: str, safe: str = "-_.~") -> str:
    return quote(text, safe=safe)


def sign_headers(
    method: str,
    host: str,
    path: str,
    query: Iterable[tuple[str, str]],
    body: bytes,
    *,
    now: float,
    ak: str = AK,
    sk: str = SK,
    region: str = "cn-north-1",
    service: str = "cv",
) -> dict[str, str]:
    """The headers the SDK adds (X-Date, X-Content-Sha256, Authorization) plus Host and Content-Type."""
    x_date = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    body_hash = hashlib.sha256(body).hexdigest()
    headers = {
        "Content-Type": "application/json", "Host": host, "X-Content-Sha256": body_hash, "X-Date": x_date
    }
    names = sorted(name.lower() for name in headers)
    lookup = {name.lower(): value for name, value in headers.items()}
    host_signed = host[: -len(":443")] if host.endswith(":443") else host
    host_signed = host_signed[: -len(":80")] if host_signed.endswith(":80") else host_signed
    lookup["host"] = host_signed
    canonical_query = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(query, key=lambda kv: kv[0]))
    canonical = "\n".join(
        [method, _enc(path, "/-_.~"), canonical_query, "".join(f"{n}:{lookup[n]}\n" for n in names),
         ";".join(names), body_hash]
    )
    scope = f"{x_date[:8]}/{region}/{service}/request"
    to_sign = "\n".join(["HMAC-SHA256", x_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = sk.encode()
    for part in (x_date[:8], region, service, "request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={';'.join(names)}, Signature={sig}"
    )
    return headers


def image_bytes(
    size: tuple[int, int] = (256, 256), fmt: str = "PNG", centre: tuple[int, int, int] | None = None
) -> bytes:
    """A face-ish test picture: gradient background, a filled circle, optional centre colour patch."""
    width, height = size
    picture = Image.new("RGB", size)
    draw = ImageDraw.Draw(picture)
    for y in range(height):
        draw.line([(0, y), (width, y)], fill=(40 + 150 * y // height, 90, 160 - 100 * y // height))
    draw.ellipse([width // 4, height // 5, 3 * width // 4, 4 * height // 5], fill=(230, 190, 160))
    if centre is not None:
        draw.rectangle([width // 2 - 24, height // 2 - 24, width // 2 + 24, height // 2 + 24], fill=centre)
    out = io.BytesIO()
    picture.save(out, fmt)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def submit_body(**fields: object) -> dict[str, object]:
    body: dict[str, object] = {"req_key": REQ_KEY, "binary_data_base64": [b64(image_bytes())]}
    body.update(fields)
    return body


class EmulatorClient:
    """Signs and sends requests to an in-process emulator app."""

    def __init__(self, config: EmulatorConfig, time: FakeTime) -> None:
        self.app = create_app(config)
        self.time = time
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://emulator.test")

    @property
    def state(self) -> EmulatorState:
        state: EmulatorState = self.app.state.emulator
        return state

    async def raw(
        self,
        action: str,
        body: bytes,
        *,
        version: str = "2022-08-31",
        sk: str = SK,
        ak: str = AK,
        signed_body: bytes | None = None,
        signed_at: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        query = [("Action", action), ("Version", version)]
        signed = sign_headers(
            "POST", "emulator.test", "/", query, body if signed_body is None else signed_body,
            now=self.time.now if signed_at is None else signed_at, ak=ak, sk=sk,
        )
        if signed_body is not None:
            signed["X-Content-Sha256"] = hashlib.sha256(body).hexdigest()
        signed.update(headers or {})
        return await self.http.post("/?" + urlencode(query), content=body, headers=signed)

    async def call(self, action: str, body: dict[str, object], **options: object) -> httpx.Response:
        return await self.raw(action, json.dumps(body).encode(), **options)  # type: ignore[arg-type]

    async def submit(self, **fields: object) -> httpx.Response:
        return await self.call(SUBMIT, submit_body(**fields))

    async def submit_id(self, **fields: object) -> str:
        response = await self.submit(**fields)
        assert response.status_code == 200, response.text
        task_id: str = response.json()["data"]["task_id"]
        return task_id

    async def result(self, task_id: str, req_json: dict[str, object] | None = None) -> httpx.Response:
        body: dict[str, object] = {"req_key": REQ_KEY, "task_id": task_id}
        if req_json is not None:
            body["req_json"] = json.dumps(req_json)
        return await self.call(RESULT, body)
