"""Bot overhead per generation: `python -m benchmarks.bench_bot [--quick] [--users N]`.

The real Application (bot.app.build_application, the production services) long-polls the fake Bot API
served by uvicorn on 127.0.0.1, and its PortraitClient reaches the emulator through an in-process ASGI
transport, as the end-to-end harness wires them. The emulator finishes every task at once (zero queue and
generation time), the upstream QPS and concurrency limits are lifted, and the client's sleeps are shortened
50 times (the harness's WarpClock) so the poll schedule's 1.5 s first wait is 30 ms, not what is measured.

N users (200; 50 with --quick) each send a selfie; once every selfie is acknowledged, all N send `/anime`
at the same instant. Per generation, on one clock (time.time, the fake's clock for BotCall.at):
  (a) update -> submit: the fake enqueues the `/anime` update -> the SubmitTask request reaches the emulator
  (b) done -> photo:    the emulator's first GetResult answer saying `done` -> sendPhoto reaches the fake
  end to end:           the `/anime` update -> sendPhoto reaches the fake
Two bot runs: Telegram's flood limit as the bot ships it (PTB's AIORateLimiter, 30 requests/s over all
chats, so N users queue behind it as they would on api.telegram.org), and the same bot with that limiter's
rates lifted (retries kept), which leaves the bot's own overhead.

Also per run: throughput (generations / (last photo - first update)), the process's CPU time per generation
(time.process_time over the burst, so the fake's and the emulator's share is in it too) and the Bot API
calls per generation by method (plus one file download, which the fake does not list as a call).

The baseline, measured in the same run against the same emulator and fake: N concurrent raw PortraitClient
submit + wait round trips (no bot, same client settings), and N concurrent raw sendPhoto uploads of a
result-sized JPEG with httpx. Ratios are bot interval / baseline round trip (p50 over p50).

Everything shares one process and event loop: the fake Telegram (uvicorn, multipart parsing) and the
emulator run beside the bot, which in production has its process to itself, so the intervals are upper
bounds for the bot's own work. The emulator renders the (identical) requests once, without its per-seed
variation, as the real service's rendering costs the bot's machine nothing. Exit status 1 unless every
user got exactly one photo, every task is done and the quota ledger check passes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
from telegram.constants import FloodLimit
from telegram.ext import AIORateLimiter

import bot.app
from api_client import PortraitClient, SubmitRequest
from api_client.clock import SystemClock
from api_client.emulator import EmulatorConfig, create_app
from api_client.emulator import app as emulator_app
from api_client.emulator.render import LogoInfo, render_result
from bot.app import App, build_application, start_application, stop_application
from bot.config import Secret, Settings
from bot.handlers.context import SERVICES_KEY
from bot.ops.ratelimit import CountingRateLimiter
from bot.services import Services, open_services
from demo.scripted_chat import draw_selfie
from fake_telegram import BotCall, FakeTelegram, FakeUser, serve
from storage import TaskState

AK, SK = "AKbench", "SKbench"
SUBMIT, RESULT = "CVSync2AsyncSubmitTask", "CVSync2AsyncGetResult"
TIME_WARP = 50.0
TIMEOUT = 90.0  # seconds a phase may take before the run is declared failed


class WarpClock(SystemClock):
    """Wall-clock time for signing, sleeps shortened TIME_WARP times (as in tests/e2e/conftest.py)."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / TIME_WARP)


class TimedTransport(httpx.AsyncBaseTransport):
    """The emulator's ASGI transport, noting when each submit arrived and each task was first seen done.

    Keyed by the upstream task id, which the store also keeps, so a submit is matched to its user.
    """

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.submitted: dict[str, float] = {}
        self.done: dict[str, float] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        action = request.url.params.get("Action")
        arrived = time.time()
        response = await self._inner.handle_async_request(request)
        answered = time.time()
        body = await response.aread()
        data = _data(body)
        if action == SUBMIT and "task_id" in data:
            self.submitted[str(data["task_id"])] = arrived
        elif action == RESULT and data.get("status") == "done":
            task_id = str(json.loads(request.content).get("task_id"))
            self.done.setdefault(task_id, answered)
        return httpx.Response(response.status_code, headers=response.headers, content=body)


def _data(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class Env:
    """One emulator and one fake Telegram (served), shared by the bot runs and the baseline."""

    fake: FakeTelegram
    url: str
    transport: TimedTransport
    workdir: Path
    next_user: int = 100_000


@functools.lru_cache(maxsize=8)
def _render_cached(face: bytes, style: bytes | None, width: int, height: int, logo: LogoInfo) -> bytes:
    return render_result(face, style, width, height, logo)


def _render_once(
    face: bytes, style: bytes | None, width: int, height: int, logo: LogoInfo, seed: int = -1
) -> bytes:
    """The emulator's render without the per-seed variation, so identical requests share one render."""
    return _render_cached(face, style, width, height, logo)


@contextlib.asynccontextmanager
async def environment(workdir: Path) -> AsyncIterator[Env]:
    """The emulator renders identical requests once: the real service's rendering costs the bot's machine
    nothing, while here ~0.1 s of CPU per task would be billed to the bot's process and cores."""
    emulator = create_app(
        EmulatorConfig(access_key=AK, secret_key=SK, queue_seconds=0.0, generate_seconds=0.0)
    )
    fake = FakeTelegram()
    with mock.patch.object(emulator_app, "render_result", _render_once):
        async with serve(fake) as url:
            yield Env(fake, url, TimedTransport(emulator), workdir)


def bot_settings(token: str, api_url: str, db_path: Path, users: int) -> Settings:
    """Production defaults except the endpoints, the database and the upstream limits (lifted)."""
    return Settings(
        telegram_bot_token=Secret(token),
        volc_access_key=Secret(AK),
        volc_secret_key=Secret(SK),
        telegram_api_url=api_url,
        volc_endpoint="http://emulator.invalid",
        db_path=db_path,
        max_concurrent_tasks=users,
        upstream_qps=1_000_000.0,
    )


@dataclass
class BotRun:
    label: str
    update_to_submit: list[float] = field(default_factory=list)
    done_to_photo: list[float] = field(default_factory=list)
    end_to_end: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # the whole process (bot, fake, emulator), /anime burst to runner idle
    calls: dict[str, float] = field(default_factory=dict)  # Bot API calls per generation, by method
    problems: list[str] = field(default_factory=list)


class PhotoCalls:
    """Successful sendPhoto calls to `chats`, read incrementally (rescanning every call each check would
    cost the loop more than some of what it measures)."""

    def __init__(self, fake: FakeTelegram, chats: set[int]) -> None:
        self._fake, self._chats = fake, chats
        self._seen = 0
        self.found: list[BotCall] = []

    def count(self) -> int:
        calls = self._fake.calls
        for call in calls[self._seen :]:
            if call.method == "sendPhoto" and call.ok and call.chat_id in self._chats:
                self.found.append(call)
        self._seen = len(calls)
        return len(self.found)


async def _until(predicate: Callable[[], bool], what: str) -> None:
    """Check every 20 ms (one cheap check, not one waiter per user competing with the bot for the loop)."""
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {TIMEOUT:.0f} s")
        await asyncio.sleep(0.02)


async def run_bot(env: Env, users: int, selfie: bytes, *, telegram_limit: bool) -> BotRun:
    label = "bot, Telegram flood limit on" if telegram_limit else "bot, flood limit lifted"
    result = BotRun(label)
    people = [env.fake.add_user(env.next_user + i, f"U{i}", f"u{env.next_user + i}") for i in range(users)]
    chats = [env.fake.private_chat(user) for user in people]
    settings = bot_settings(env.fake.token, f"{env.url}/bot", env.workdir / f"bot-{env.next_user}.db", users)
    env.next_user += users

    async def services(s: Settings, tg: Any) -> Services:
        return await open_services(s, tg, transport=env.transport, client_clock=WarpClock())

    limiter: Callable[..., AIORateLimiter] = CountingRateLimiter  # the bot's: PTB's, counting 429s
    if not telegram_limit:

        def limiter(**kwargs: Any) -> AIORateLimiter:
            return CountingRateLimiter(overall_max_rate=0, group_max_rate=0, **kwargs)

    with mock.patch.object(bot.app, "CountingRateLimiter", limiter):
        app: App = build_application(settings, services_factory=services)
    await start_application(app, poll_timeout=5)
    try:
        for user, chat in zip(people, chats, strict=True):
            env.fake.send_photo(user, chat, selfie)
        await _until(lambda: all(env.fake.sent_messages(c.id) for c in chats), "selfies acknowledged")
        sent: dict[int, float] = {}
        first_call, cpu = len(env.fake.calls), time.process_time()
        for user, chat in zip(people, chats, strict=True):
            sent[chat.id] = time.time()
            env.fake.send_text(user, chat, "/anime")
        photos = PhotoCalls(env.fake, set(sent))
        await _until(lambda: photos.count() >= users, "every photo sent")
        svc: Services = app.bot_data[SERVICES_KEY]
        await _until(lambda: not svc.runner.running, "runner idle")
        photos.count()
        result.cpu_seconds = time.process_time() - cpu
        result.seconds = max(c.at for c in photos.found) - min(sent.values())
        methods = Counter(c.method for c in env.fake.calls[first_call:] if c.method != "getUpdates")
        result.calls = {name: count / users for name, count in methods.most_common()}
        await _collect(env, svc, people, sent, photos.found, result)
    finally:
        await stop_application(app)
    return result


async def _collect(
    env: Env,
    svc: Services,
    people: list[FakeUser],
    sent: dict[int, float],
    photos: list[BotCall],
    run: BotRun,
) -> None:
    """Join the update times, the emulator's marks and the fake's sendPhoto calls per user; check them."""
    photo_at: dict[int, list[float]] = {}
    for call in photos:
        if isinstance(call.chat_id, int):
            photo_at.setdefault(call.chat_id, []).append(call.at)
    for user in people:
        tasks = await svc.store.tasks.recent_for_user(user.id, limit=5)
        got = photo_at.get(user.id, [])
        if len(got) != 1 or len(tasks) != 1 or tasks[0].state is not TaskState.DONE:
            states = [t.state.value for t in tasks]
            run.problems.append(f"user {user.id}: {len(got)} photo(s), tasks {states}")
            continue
        upstream = tasks[0].upstream_task_id or ""
        submitted, done = env.transport.submitted.get(upstream), env.transport.done.get(upstream)
        if submitted is None or done is None:
            run.problems.append(f"user {user.id}: emulator never saw task {upstream!r} submitted and done")
            continue
        run.update_to_submit.append(submitted - sent[user.id])
        run.done_to_photo.append(got[0] - done)
        run.end_to_end.append(got[0] - sent[user.id])
    check = await svc.store.quotas.check()
    if not check.ok:
        run.problems.append("ledger check: " + "; ".join(check.problems[:5]))


@dataclass
class Baseline:
    round_trip: list[float] = field(default_factory=list)  # submit + wait, per task
    submit: list[float] = field(default_factory=list)  # the submit call alone
    send_photo: list[float] = field(default_factory=list)
    failures: int = 0
    cpu_seconds: float = 0.0  # generations plus uploads


async def run_baseline(env: Env, users: int, selfie: bytes) -> Baseline:
    """N raw PortraitClient generations, then N raw sendPhoto uploads, all at once, no bot in between."""
    base = Baseline()
    request = SubmitRequest.from_images(selfie, face_switch=True)
    image = b""
    async with PortraitClient(
        AK, SK, endpoint="http://emulator.invalid", transport=env.transport, qps=1_000_000.0,
        max_concurrent_tasks=users, clock=WarpClock(),
    ) as client:  # fmt: skip

        async def generate() -> None:
            nonlocal image
            try:
                async with client.task_slot():
                    t0 = time.time()
                    task_id = await client.submit(request)
                    t1 = time.time()
                    result = await client.wait(task_id)
                    base.submit.append(t1 - t0)
                    base.round_trip.append(time.time() - t0)
                    image = image or result.images[0]
            except Exception:
                base.failures += 1

        cpu = time.process_time()
        await asyncio.gather(*(generate() for _ in range(users)))
        base.cpu_seconds += time.process_time() - cpu
    people = [env.fake.add_user(env.next_user + i, f"B{i}", f"b{env.next_user + i}") for i in range(users)]
    env.next_user += users
    chats = [env.fake.private_chat(user) for user in people]
    limits = httpx.Limits(max_connections=256)  # PTB's Application pool size for bot calls
    async with httpx.AsyncClient(base_url=f"{env.url}/bot{env.fake.token}", limits=limits) as http:

        async def send(chat_id: int) -> None:
            t0 = time.time()
            answer = await http.post(
                "/sendPhoto", data={"chat_id": str(chat_id), "caption": "portrait"},
                files={"photo": ("portrait.jpg", image, "image/jpeg")},
            )  # fmt: skip
            if answer.status_code == 200:
                base.send_photo.append(time.time() - t0)
            else:
                base.failures += 1

        cpu = time.process_time()
        await asyncio.gather(*(send(chat.id) for chat in chats))
        base.cpu_seconds += time.process_time() - cpu
    return base


# --- report ------------------------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank), so p50/p95/max are values that were actually measured."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def _ms(value: float) -> str:
    return f"{value * 1000:,.1f}"


def print_report(runs: list[BotRun], base: Baseline) -> None:
    header = ("interval (ms)", "p50", "p95", "max", "baseline p50", "p50/baseline")
    rows: list[tuple[str, ...]] = []

    def row(name: str, values: Sequence[float], *extra: str) -> None:
        rows.append(
            (f"  {name}", _ms(pct(values, 50)), _ms(pct(values, 95)), _ms(max(values, default=0)), *extra)
        )

    for run in runs:
        rows.append((f"[{run.label}]", "", "", "", "", ""))
        for name, values, what, reference in (
            ("update -> submit", run.update_to_submit, "raw submit", base.submit),
            ("done -> sendPhoto", run.done_to_photo, "raw sendPhoto", base.send_photo),
            ("end to end", run.end_to_end, "raw submit+wait", base.round_trip),
        ):
            ratio = pct(values, 50) / pct(reference, 50) if reference else float("nan")
            row(name, values, f"{_ms(pct(reference, 50))} ({what})", f"{ratio:.1f}x")
        rate = len(run.end_to_end) / run.seconds if run.seconds else 0.0
        done = f"{len(run.end_to_end)} in {run.seconds:.1f} s"
        rows.append(("  throughput", f"{rate:.1f}/s", "", "", "", done))
        cpu, base_cpu = (
            run.cpu_seconds / max(1, len(run.end_to_end)),
            base.cpu_seconds / max(1, len(base.submit)),
        )
        rows.append(("  CPU per generation", _ms(cpu), "", "", f"{_ms(base_cpu)} (raw generate+send)",
                     f"{cpu / base_cpu:.1f}x" if base_cpu else ""))  # fmt: skip
    rows.append(("[baseline, no bot]", "", "", "", "", ""))
    row("raw submit", base.submit, "", "")
    row("raw submit+wait", base.round_trip, "", "")
    row("raw sendPhoto", base.send_photo, "", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for line in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    for run in runs:
        calls = ", ".join(f"{name} {count:.2g}" for name, count in run.calls.items())
        total = sum(run.calls.values())
        print(f"Bot API calls per generation ({run.label}; getUpdates aside): {total:.1f} = {calls}")


async def run(users: int, quick: bool, workdir: Path) -> int:
    selfie = draw_selfie()
    async with environment(workdir) as env:
        # Warm-up, not reported: imports, the first render, connections, the bot's first-call paths.
        await run_baseline(env, min(users, 10), selfie)
        warm = await run_bot(env, min(users, 3), selfie, telegram_limit=False)
        base = await run_baseline(env, users, selfie)
        runs = [
            await run_bot(env, users, selfie, telegram_limit=False),
            await run_bot(env, users, selfie, telegram_limit=True),
        ]
    print_report(runs, base)
    problems = [f"{r.label}: {p}" for r in [warm, *runs] for p in r.problems]
    if base.failures:
        problems.append(f"baseline: {base.failures} call(s) failed")
    for problem in problems[:20]:
        print("FAIL", problem)
    print(f"{len(problems)} problem(s)" if problems else "every user got exactly one photo; ledger check ok")
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_bot", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="50 users instead of 200")
    parser.add_argument("--users", type=int, help="users sending /anime at once")
    args = parser.parse_args(argv)
    users = args.users or (50 if args.quick else 200)
    settings = bot_settings("-", "http://127.0.0.1/bot", Path("-"), users)
    print(
        f"{users} users at once, {os.cpu_count()} CPUs. Emulator: queue, generation 0 s, one shared render."
        f" Bot: production settings except upstream_qps={settings.upstream_qps:g},"
        f" max_concurrent_tasks={settings.max_concurrent_tasks}"
        f" (status_edit_interval={settings.status_edit_interval:g} s,"
        f" max_active_tasks_per_user={settings.max_active_tasks_per_user}); client sleeps /{TIME_WARP:g};"
        f" Telegram flood limit: PTB AIORateLimiter defaults ({FloodLimit.MESSAGES_PER_SECOND}/s overall,"
        f" {FloodLimit.MESSAGES_PER_MINUTE_PER_GROUP}/min per group), then lifted (0 = off).",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(run(users, args.quick, Path(tmp)))


if __name__ == "__main__":
    raise SystemExit(main())
