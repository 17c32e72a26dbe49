"""A job-runner test bench: real Store (tmp SQLite), real PortraitClient against the in-process emulator,
a recording Notifier, and one FakeClock shared by all of them so nothing really sleeps."""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image

from api_client.client import PortraitClient
from api_client.clock import FakeClock
from api_client.emulator import EmulatorConfig, EmulatorState, create_app
from bot.config import Secret, Settings
from bot.jobs.notifier import RecipientGone
from bot.jobs.params import build_params
from bot.jobs.prepared import PreparedCache
from bot.jobs.runner import JobRunner
from bot.replies.errors import FriendlyError
from storage import NewTask, QueueEntry, Store, Task, UserSettings

AK, SK = "AKtest", "SKtest"
START = 1_790_000_000.0


def jpeg(size: tuple[int, int] = (320, 320), color: tuple[int, int, int] = (200, 160, 120)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


FILES = {
    "face": jpeg(),
    "style": jpeg(color=(30, 60, 200)),
    "magenta": jpeg(color=(255, 0, 255)),
    "tiny": jpeg((64, 64)),
    "junk": b"this is not an image at all" * 10,
}


class RecordingNotifier:
    """The Notifier protocol, recording what a user would see; knobs make it fail like Telegram does."""

    def __init__(self) -> None:
        self.statuses: list[tuple[int, str]] = []
        self.delivered: list[tuple[int, bytes]] = []
        self.failures: list[tuple[int, FriendlyError, str]] = []
        #: notes with the "Send it again" button (the delivery was not confirmed)
        self.unconfirmed_notes: list[tuple[int, FriendlyError, str]] = []
        self.alerts: list[str] = []
        self.downloads: list[str] = []
        self.gone: set[int] = set()  # chats that answer 403
        self.gone_on: set[str] = set()  # only these methods refuse (empty: all)
        self.blocks_at: str | None = None  # the user blocks the bot when this stage is shown
        self.download_error: BaseException | None = None
        self.deliver_error: BaseException | None = None
        self.download_errors: list[BaseException] = []  # raised once each, before download_error
        self.deliver_errors: list[BaseException] = []  # raised once each, before deliver_error
        self.hold_after_sent = False  # block deliver() after the photo is accepted, until `release` is set
        self.hold_at: str | None = None  # block status() at this stage until `release` is set
        self.hold_download = False  # block download() (the request being built) until `release` is set
        self.hold_before_send = False  # block deliver() before it sends, until `release` is set
        self.hold_while_sending = False  # block deliver() once the photo may be out, until `release` is set
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        self.in_flight: set[int] = set()
        self.max_in_flight = 0
        self.forgotten: list[int] = []
        self.places: list[tuple[int, int, int]] = []  # (task id, position, minutes) shown while waiting

    def _refuse(self, chat_id: int, method: str) -> None:
        if chat_id in self.gone and (not self.gone_on or method in self.gone_on):
            raise RecipientGone(chat_id)

    async def download(self, file_id: str) -> bytes:
        if self.download_errors:
            raise self.download_errors.pop(0)
        if self.download_error is not None:
            raise self.download_error
        self.downloads.append(file_id)
        if self.hold_download:
            self.held.set()
            await self.release.wait()
        return FILES[file_id]

    async def status(self, task: Task, stage: str, elapsed: float, *, lang: str, final: bool = False) -> None:
        if stage == self.blocks_at:
            self.gone.add(task.chat_id)
        self._refuse(task.chat_id, "status")
        self.statuses.append((task.id, stage))
        if stage == "submitting":
            self.in_flight.add(task.id)
            self.max_in_flight = max(self.max_in_flight, len(self.in_flight))
        if stage == self.hold_at:
            self.held.set()
            await self.release.wait()

    async def queue_place(self, task: QueueEntry, position: int, minutes: int, *, lang: str) -> None:
        self._refuse(task.chat_id, "status")
        self.places.append((task.id, position, minutes))

    async def deliver(
        self, task: Task, image: bytes, *, lang: str,
        on_send: Callable[[], Awaitable[None]] | None = None,
        on_sent: Callable[[str], Awaitable[None]] | None = None,
    ) -> str:
        if self.hold_before_send:  # waiting for the chat's turn (the pacer), nothing sent yet
            self.held.set()
            await self.release.wait()
        self._refuse(task.chat_id, "deliver")
        if on_send is not None:
            await on_send()
        if self.hold_while_sending:  # inside send_photo: a kill here leaves the delivery in doubt
            self.held.set()
            await self.release.wait()
        self.in_flight.discard(task.id)
        if self.deliver_errors:
            raise self.deliver_errors.pop(0)
        if self.deliver_error is not None:
            raise self.deliver_error
        self.delivered.append((task.id, image))
        if on_sent is not None:
            await on_sent(f"photo-{task.id}")
        if self.hold_after_sent:  # sending the extras (full-size document, final edit) takes a while
            self.held.set()
            await self.release.wait()
        return f"photo-{task.id}"

    async def failed(self, task: Task, error: FriendlyError, lang: str) -> None:
        self._refuse(task.chat_id, "failed")
        self.in_flight.discard(task.id)
        self.failures.append((task.id, error, lang))

    async def unconfirmed(self, task: Task, error: FriendlyError, lang: str) -> None:
        self._refuse(task.chat_id, "failed")
        self.in_flight.discard(task.id)
        self.unconfirmed_notes.append((task.id, error, lang))

    async def admin_alert(self, text: str, *, kind: str = "other") -> None:
        self.alerts.append(text)

    def forget(self, task_id: int) -> None:
        self.forgotten.append(task_id)

    def stages(self, task_id: int) -> list[str]:
        return [stage for tid, stage in self.statuses if tid == task_id]

    def keys(self) -> list[str]:
        return [error.key for _, error, _ in self.failures]


class HangAfterSubmit(httpx.AsyncBaseTransport):
    """Forwards a submit to the emulator, then never answers: the process 'dies' with the outcome unknown."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.forwarded = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if "CVSync2AsyncSubmitTask" in str(request.url):
            self.forwarded.set()
            await asyncio.Event().wait()
        return response


@dataclass
class Bench:
    clock: FakeClock
    store: Store
    app_state: EmulatorState
    transport: httpx.AsyncBaseTransport
    settings: Settings
    clients: list[PortraitClient] = field(default_factory=list)

    def client(
        self, *, transport: httpx.AsyncBaseTransport | None = None, secret: str = SK
    ) -> PortraitClient:
        client = PortraitClient(
            AK, secret, endpoint="http://emulator.test", transport=transport or self.transport,
            max_retries=1, max_concurrent_tasks=self.settings.max_concurrent_tasks, qps=1000.0,
            clock=self.clock, rng=random.Random(7),
        )
        self.clients.append(client)
        return client

    def runner(
        self, notifier: RecordingNotifier | None = None, *, client: PortraitClient | None = None,
        owner: str | None = "worker-a", prepared: PreparedCache | None = None,
    ) -> tuple[JobRunner, RecordingNotifier]:
        notifier = notifier or RecordingNotifier()
        runner = JobRunner(
            self.store, client or self.client(), notifier,
            settings=self.settings, clock=self.clock, owner=owner, prepared=prepared,
        )
        return runner, notifier

    async def task(
        self, user_id: int = 1, *, face: str = "face", style: str | None = None, language: str = "en",
        chat_id: int | None = None, status_message_id: int | None = None, **choices: object,
    ) -> Task:
        await self.store.users.upsert_seen(user_id, username=None, first_name="U", language_code=language)
        settings = UserSettings(**choices)  # type: ignore[arg-type]
        params = build_params(
            settings, has_style=style is not None, prompt_override=None, max_prompt_length=300
        )
        task, created = await self.store.tasks.create(
            NewTask(user_id=user_id, chat_id=user_id if chat_id is None else chat_id,
                    origin_key=f"{user_id}:{self.clock.now()}",
                    request_message_id=5, face_file_id=face, style_file_id=style, params=params)
        )
        assert created
        if status_message_id is not None:
            task = await self.store.tasks.update(task.id, status_message_id=status_message_id)
        return task

    async def state(self, task_id: int) -> Task:
        task = await self.store.tasks.get(task_id)
        assert task is not None
        return task

    async def free_left(self, user_id: int = 1) -> int:
        return (await self.store.quotas.balance(user_id)).free_left

    async def ledger_ok(self) -> bool:
        check = await self.store.quotas.check()
        assert check.problems == []
        return check.ok


@asynccontextmanager
async def bench(tmp_path: Path, **config: object) -> AsyncIterator[Bench]:
    clock = FakeClock(START)
    emulator_config = EmulatorConfig(
        access_key=AK, secret_key=SK, queue_seconds=2.0, generate_seconds=4.0,
        clock=clock.now, sleep=clock.sleep, **config,  # type: ignore[arg-type]
    )
    app = create_app(emulator_config)
    store = await Store.open(tmp_path / "bot.db", clock=clock, daily_free_quota=3, synchronous="NORMAL")
    settings = Settings(
        telegram_bot_token=Secret("t"), volc_access_key=Secret(AK), volc_secret_key=Secret(SK),
        max_concurrent_tasks=2, task_deadline_seconds=120.0, admin_chat_id=-100,
    )
    b = Bench(clock, store, app.state.emulator, httpx.ASGITransport(app=app), settings)
    try:
        yield b
    finally:
        for client in b.clients:
            await client.aclose()
        await b.store.close()  # the test may have swapped it (an upgraded file)
