"""The fake Bot API in its own process, playing a viral burst of users, with Telegram's rate limits.

    python -m benchmarks.burst_telegram --port 8098 --users 500 --spread 15

For benchmarks/bench_burst.py. It serves `fake_telegram` (the bot long-polls it like api.telegram.org) and,
on `GET /bench/start`, sends N photos captioned `/anime` (a selfie and a request in one message) spread
evenly over `--spread` seconds, a share of them in groups. In front of the fake sits Telegram's flood
control as token buckets (`RateLimits`): about 30 requests a second that name a chat, 20 a minute per
group, and about one a second per chat after a burst of a few; a request over a bucket gets the real 429
with `retry_after`, and is counted. `GET /bench/stats` answers what happened: 429s by method, edits per
second (all status edits, and those showing a place in line), results delivered and how long each
request waited for its portrait, private chats and groups apart.

Memory: the bot's result photos are not kept (only their ids), so ten thousand results do not fill it.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import uvicorn
from PIL import Image

from benchmarks.burst_upstream import ASGIApp, Message, Receive, Scope, Send, _json
from fake_telegram import FakeTelegram
from fake_telegram.app import create_app
from fake_telegram.model import BotCall, FakeChat, FakeUser
from fake_telegram.params import parse_body

TOKEN = "424242:BURST-benchmark-token"
#: Telegram's guidance (seed/telegram-facts.md), with 10 % slack for requests that bunch up on the way.
OVERALL_PER_SECOND = 33.0
GROUP_PER_MINUTE = 22.0
CHAT_BURST, CHAT_PER_SECOND = 5.0, 1.1
PLACE_PREFIX = "⏳ #"


@dataclass
class Bucket:
    capacity: float
    rate: float  # tokens per second
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> bool:
        if self.tokens < 0:
            self.tokens, self.at = self.capacity, now
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


@dataclass
class RateLimits:
    """ASGI middleware: Telegram's flood control in front of the fake Bot API."""

    app: ASGIApp
    burst: Burst
    overall: Bucket = field(default_factory=lambda: Bucket(OVERALL_PER_SECOND, OVERALL_PER_SECOND))
    chats: dict[int, Bucket] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "/bot" not in scope["path"] or "/file/" in scope["path"]:
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith("/bench/"):
            await self.burst.control(scope, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        method = scope["path"].rsplit("/", 1)[-1]
        chat_id = _chat_id(scope, body)
        over = self._over(chat_id) if chat_id is not None else None
        if over is not None:
            self.refused[f"{method} ({over})"] += 1
            retry = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                     "parameters": {"retry_after": 1}}  # fmt: skip
            await _json(send, 429, retry)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _over(self, chat_id: int) -> str | None:
        """Which limit this request breaks ("overall", "group", "chat"), or None."""
        now = time.monotonic()
        chat = self.chats.get(chat_id)
        if chat is None:
            per_second = GROUP_PER_MINUTE / 60 if chat_id < 0 else CHAT_PER_SECOND
            capacity = GROUP_PER_MINUTE if chat_id < 0 else CHAT_BURST
            chat = self.chats[chat_id] = Bucket(capacity, per_second)
        if not self.overall.take(now):
            return "overall"
        return None if chat.take(now) else ("group" if chat_id < 0 else "chat")


def _chat_id(scope: Scope, body: bytes) -> int | None:
    headers = dict(scope.get("headers") or [])
    query = scope.get("query_string", b"").decode()
    params = parse_body(headers.get(b"content-type", b"").decode(), body, query)
    value = params.values.get("chat_id")
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


class BurstFake(FakeTelegram):
    """The fake, keeping only what the benchmark reads about each call."""

    def __init__(self) -> None:
        super().__init__(token=TOKEN, privacy_mode=False)
        self.requests: dict[tuple[int, int], tuple[float, bool]] = {}  # (chat, message) -> (sent, group)
        self.delivered: dict[tuple[int, int], float] = {}
        self.edits: Counter[int] = Counter()  # second -> status edits
        self.place_edits: Counter[int] = Counter()
        self.sends: Counter[int] = Counter()  # second -> requests naming a chat
        self.methods: Counter[str] = Counter()

    def record(self, call: BotCall) -> None:
        second = int(call.at)
        self.methods[call.method] += 1
        if call.chat_id is not None:
            self.sends[second] += 1
        if call.method == "editMessageText" and call.ok:
            self.edits[second] += 1
            if str(call.params.get("text", "")).startswith(PLACE_PREFIX):
                self.place_edits[second] += 1
        if call.method in ("sendPhoto", "sendDocument") and call.ok:
            self._delivered(call)
        super().record(replace(call, files={}))
        if len(self.calls) > 1000:
            del self.calls[:500]  # keep memory flat; nothing here reads old calls

    def _delivered(self, call: BotCall) -> None:
        reply = call.params.get("reply_parameters")
        if isinstance(reply, str):
            reply = json.loads(reply)
        chat_id = call.chat_id
        if isinstance(reply, dict) and isinstance(chat_id, int):
            key = (chat_id, int(reply.get("message_id", 0)))
            if key in self.requests and key not in self.delivered:
                self.delivered[key] = call.at
        result = call.result if isinstance(call.result, dict) else {}
        for size in [*(result.get("photo") or []), result.get("document") or {}]:
            stored = self.files.get(size.get("file_id", ""))
            if stored is not None:
                stored.source = b""  # the bot never downloads its own results


@dataclass
class Burst:
    """The users and the schedule of their requests."""

    fake: BurstFake
    users: int
    spread: float
    group_share: float
    group_size: int = 20
    limits: RateLimits | None = None
    started_at: float | None = None
    sent: int = 0
    player: asyncio.Task[None] | None = None

    async def control(self, scope: Scope, send: Send) -> None:
        if scope["path"] == "/bench/start" and self.started_at is None:
            self.started_at = time.time()
            self.player = asyncio.create_task(self.play())
        await _json(send, 200, self.stats())

    async def play(self) -> None:
        selfie = _selfie()
        people: list[tuple[FakeUser, FakeChat]] = []
        groups = max(1, round(self.users * self.group_share / self.group_size)) if self.group_share else 0
        group_chats = [self.fake.group(-1_000_000_000 - n, f"Group {n}") for n in range(groups)]
        for n in range(self.users):
            user = self.fake.add_user(10_000 + n, f"User{n}", f"user{n}")
            if group_chats and n % round(1 / self.group_share) == 0:
                chat = group_chats[(n // round(1 / self.group_share)) % len(group_chats)]
                chat.members.add(user.id)
            else:
                chat = self.fake.private_chat(user)
            people.append((user, chat))
        start = time.monotonic()
        for n, (user, chat) in enumerate(people):
            delay = start + n * self.spread / self.users - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            message = self.fake.send_photo(user, chat, selfie, caption="/anime")
            self.fake.requests[(chat.id, message.message_id)] = (time.time(), chat.id < 0)
            self.sent += 1

    def stats(self) -> dict[str, Any]:
        fake = self.fake
        waits: dict[bool, list[float]] = {False: [], True: []}
        for key, (sent_at, group) in fake.requests.items():
            if key in fake.delivered:
                waits[group].append(fake.delivered[key] - sent_at)
        active = [s for s in fake.edits if fake.edits[s]]
        span = (max(active) - min(active) + 1) if active else 1
        return {
            "sent": self.sent, "delivered": len(fake.delivered),
            "refused_429": dict(self.limits.refused) if self.limits else {},
            "edits_max_per_s": max(fake.edits.values(), default=0),
            "edits_mean_per_s": sum(fake.edits.values()) / span,
            "place_edits": sum(fake.place_edits.values()),
            "place_edits_max_per_s": max(fake.place_edits.values(), default=0),
            "requests_max_per_s": max(fake.sends.values(), default=0),
            "methods": dict(fake.methods),
            "wait_private": _summary(waits[False]), "wait_group": _summary(waits[True]),
        }  # fmt: skip


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {"n": len(ordered), "p50": statistics.median(ordered), "max": ordered[-1]}


def _selfie() -> bytes:
    """A photo-like 800 px JPEG (noise over a gradient: it does not compress to nothing)."""
    side = 800
    noise = Image.effect_noise((side, side), 40).convert("RGB")
    gradient = Image.linear_gradient("L").resize((side, side)).convert("RGB")
    buffer = io.BytesIO()
    Image.blend(noise, gradient, 0.5).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


async def serve(burst: Burst, host: str, port: int) -> None:
    limits = RateLimits(create_app(burst.fake), burst)
    burst.limits = limits

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/bench/"):
            await burst.control(scope, send)
            return
        await limits(scope, receive, send)

    config = uvicorn.Config(
        app, host=host, port=port, lifespan="off", log_level="warning", timeout_keep_alive=30
    )
    await uvicorn.Server(config).serve()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.burst_telegram", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--spread", type=float, default=60.0)
    parser.add_argument("--group-share", type=float, default=0.2)
    args = parser.parse_args(argv)
    burst = Burst(BurstFake(), args.users, args.spread, args.group_share)
    asyncio.run(serve(burst, args.host, args.port))


if __name__ == "__main__":
    main()
