"""The bot benchmark's baseline: what the bot's two outside calls cost with no bot around them.

    python -m benchmarks.baseline_worker client --base-url URL --face PATH --tasks N --concurrency C
    python -m benchmarks.baseline_worker send-photo --telegram-url URL/bot<token> --chats 1,2 --image PATH

Each mode runs in its own process (as the bot does), against the same emulator and fake Telegram servers
the bot is measured against, and prints one JSON line: per call the seconds taken on the wall clock, and
this process's CPU seconds (`time.process_time`, all threads) around the measured calls only.

- `client`: `PortraitClient` as the bot configures it (default transport, uvloop where installed, no QPS
  limit, the default poll schedule): submit the prepared face (the image is prepared before the clock
  starts) and wait for the result; `submit` is the submit call alone, `round_trip` submit to the decoded
  result. `--tasks` in all, at most `--concurrency` at once (1: one after the other). `--result-out`
  keeps the first result image, the photo the send-photo mode uploads.
- `send-photo`: one raw multipart `sendPhoto` per chat (httpx, as PTB uses it), all at once or
  `--concurrency` at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from api_client import PortraitClient, SubmitRequest, prepare_image
from api_client.loop import fast_loop_factory

AK, SK = "AKbench", "SKbench"
WARMUP = 2


@dataclass
class Measured:
    cpu: float = 0.0
    wall: float = 0.0
    submit: list[float] = field(default_factory=list)
    round_trip: list[float] = field(default_factory=list)
    send_photo: list[float] = field(default_factory=list)
    failures: int = 0


async def _bounded(count: int, concurrency: int, one: Callable[[], Awaitable[None]]) -> None:
    gate = asyncio.Semaphore(max(1, concurrency))

    async def gated() -> None:
        async with gate:
            await one()

    await asyncio.gather(*(gated() for _ in range(count)))


async def prepared_request(selfie: bytes) -> SubmitRequest:
    """The bot's request for a selfie, the image prepared before any clock starts (image work is apart)."""
    face = (await prepare_image(selfie)).data
    return SubmitRequest.from_images(face, face_switch=True)


def portrait_client(base_url: str, concurrency: int) -> PortraitClient:
    """As the bot configures it, less the QPS limit the bot is benchmarked without."""
    return PortraitClient(AK, SK, endpoint=base_url, qps=1_000_000.0, max_concurrent_tasks=concurrency)


async def run_client(args: argparse.Namespace) -> Measured:
    request = await prepared_request(args.image_bytes)
    measured, result_image = Measured(), b""
    async with portrait_client(args.base_url, max(args.concurrency, WARMUP)) as client:

        async def one(record: bool = True) -> None:
            nonlocal result_image
            try:
                async with client.task_slot():
                    started = time.time()
                    task_id = await client.submit(request)
                    submitted = time.time()
                    result = await client.wait(task_id)
                    finished = time.time()
            except Exception:
                measured.failures += 1
                return
            result_image = result_image or result.images[0]
            if record:
                measured.submit.append(submitted - started)
                measured.round_trip.append(finished - started)

        await asyncio.gather(*(one(False) for _ in range(WARMUP)))
        cpu, wall = time.process_time(), time.perf_counter()
        await _bounded(args.tasks, args.concurrency, one)
        measured.cpu, measured.wall = time.process_time() - cpu, time.perf_counter() - wall
    args.result_image = result_image
    return measured


async def run_send_photo(args: argparse.Namespace) -> Measured:
    image: bytes = args.image_bytes
    chats = [int(chat) for chat in args.chats.split(",") if chat]
    measured = Measured()
    limits = httpx.Limits(max_connections=256)  # PTB's Application pool size for bot calls
    async with httpx.AsyncClient(base_url=args.telegram_url, limits=limits, timeout=60) as http:

        async def send(chat_id: int, record: bool = True) -> None:
            started = time.time()
            answer = await http.post(
                "/sendPhoto", data={"chat_id": str(chat_id), "caption": "portrait"},
                files={"photo": ("portrait.jpg", image, "image/jpeg")},
            )  # fmt: skip
            if answer.status_code != 200:
                measured.failures += 1
            elif record:
                measured.send_photo.append(time.time() - started)

        await send(chats[0], record=False)  # the connection and httpx's first-call paths
        pending = iter(chats)
        cpu, wall = time.process_time(), time.perf_counter()
        await _bounded(len(chats), args.concurrency or len(chats), lambda: send(next(pending)))
        measured.cpu, measured.wall = time.process_time() - cpu, time.perf_counter() - wall
    return measured


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline_worker", description=__doc__)
    modes = parser.add_subparsers(dest="mode", required=True)
    client = modes.add_parser("client")
    client.add_argument("--base-url", required=True)
    client.add_argument("--face", required=True, help="the selfie, prepared as the bot prepares it")
    client.add_argument("--tasks", type=int, required=True)
    client.add_argument("--concurrency", type=int, default=1)
    client.add_argument("--result-out", help="write the first result image here")
    send = modes.add_parser("send-photo")
    send.add_argument("--telegram-url", required=True, help="the Bot API base, ending /bot<token>")
    send.add_argument("--chats", required=True, help="comma-separated chat ids, one sendPhoto each")
    send.add_argument("--image", required=True)
    send.add_argument("--concurrency", type=int, default=0, help="at most this many at once (0: all)")
    args = parser.parse_args(argv)
    args.image_bytes = Path(args.face if args.mode == "client" else args.image).read_bytes()
    job = run_client if args.mode == "client" else run_send_photo
    with asyncio.Runner(loop_factory=fast_loop_factory()) as runner:
        measured = runner.run(job(args))
    if args.mode == "client" and args.result_out and args.result_image:
        Path(args.result_out).write_bytes(args.result_image)
    print(json.dumps(asdict(measured)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
