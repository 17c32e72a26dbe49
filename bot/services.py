"""The long-lived objects behind the handlers: store, upstream client, job runner (and small chat state).

Why a dataclass built in post_init: the store and client need the running event loop and must be closed
in order on shutdown; building them in `post_init` and closing them in `post_stop`/`post_shutdown` ties
their life to the Application's. Tests and the demo pass their own factory (an emulator transport, a
short album window) and get the same wiring otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from telegram import Bot

from api_client import PortraitClient
from api_client.clock import Clock
from api_client.learning import PollingLearner
from bot.config import Settings
from bot.handlers.albums import DEFAULT_WINDOW, AlbumCollector
from bot.handlers.downloads import ImageDownloads
from bot.handlers.flood import FloodGuard
from bot.jobs.fault_hooks import stepped_clock
from bot.jobs.notifier import Notifier
from bot.jobs.prepared import PreparedCache
from bot.jobs.resend import Resender
from bot.jobs.runner import JobRunner
from bot.ops import metrics
from bot.proxy import telegram_downloads, upstream_transport
from storage import Store
from storage.pg_limits import PgUpstreamLimits

log = logging.getLogger(__name__)


@dataclass
class Services:
    """What handlers reach through `context.services`."""

    settings: Settings
    store: Store
    client: PortraitClient
    runner: JobRunner
    notifier: Notifier
    #: user id -> "face" | "style": what the next photo is for, after /face or /style (memory only).
    awaiting: dict[int, str] = field(default_factory=dict)
    albums: AlbumCollector = field(default_factory=AlbumCollector)
    #: Received images being downloaded and checked, bounded process-wide (MAX_CONCURRENT_DOWNLOADS).
    downloads: ImageDownloads = field(init=False)
    #: Received images prepared for the service once, beside the database (bot.jobs.prepared).
    prepared: PreparedCache | None = None
    #: Each sender's update budget (USER_RATE_LIMIT, USER_RATE_BURST), checked by the gate.
    flood: FloodGuard = field(init=False)
    #: On PostgreSQL: the upstream QPS and task places shared with the other processes (storage/pg_limits.py).
    upstream_limits: PgUpstreamLimits | None = None
    #: "Send it again" under the note about an unconfirmed delivery (bot.jobs.resend).
    resender: Resender = field(init=False)
    #: The generation times learnt for planning polls; its last unsaved ones are saved at stop.
    learner: PollingLearner | None = None

    def __post_init__(self) -> None:
        self.resender = Resender(self.store, self.client, self.notifier)
        http, proxy = telegram_downloads(self.settings)
        self.downloads = ImageDownloads(
            self.settings.max_concurrent_downloads, prepared=self.prepared, http=http, proxy=proxy
        )
        self.flood = FloodGuard(self.settings.user_rate_limit, self.settings.user_rate_burst)

    async def stop_runner(self) -> None:
        """Stop taking work; unfinished tasks stay in the database for the next start (post_stop)."""
        await self.runner.stop()
        closer = getattr(self.notifier, "aclose", None)
        if closer is not None:
            await closer()  # pending throttled status edits
        if self.learner is not None:
            try:
                await self.learner.flush()
            except Exception:  # the learning of the last seconds is lost; the shutdown goes on
                log.warning("saving the learnt generation times failed", exc_info=True)

    async def close(self) -> None:
        """Close the client and the store (post_shutdown, after the runner stopped)."""
        try:
            await self.client.aclose()
            await self.downloads.aclose()
            if self.upstream_limits is not None:
                await self.upstream_limits.aclose()
        finally:
            await self.store.close()


ServicesFactory = Callable[[Settings, Bot], Awaitable[Services]]


async def open_services(
    settings: Settings,
    bot: Bot,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    client_clock: Clock | None = None,
    notifier: Notifier | None = None,
    album_window: float = DEFAULT_WINDOW,
) -> Services:
    """Open the store, the client and the runner (not started) for `settings`.

    `transport` and `client_clock` let tests and the demo point the client at an in-process emulator and
    shorten its polling sleeps; `notifier` replaces the Telegram notifier (tests of the runner seam).
    """
    clock = stepped_clock()  # None unless the PORTRAIT_BOT_CLOCK_OFFSET test hook is set
    store = await Store.open(
        settings.database,
        clock=clock,
        daily_free_quota=settings.daily_free_quota,
        quota_timezone=settings.quota_timezone,
    )
    limits: PgUpstreamLimits | None = None
    try:
        if settings.database_url is not None:  # processes on several hosts share the account's limits
            limits = await PgUpstreamLimits.open(
                settings.database_url.value, qps=settings.upstream_qps,
                max_concurrent_tasks=settings.max_concurrent_tasks, holder=settings.worker_id,
            )  # fmt: skip
        client = PortraitClient(
            settings.volc_access_key.value,
            settings.volc_secret_key.value,
            endpoint=settings.volc_endpoint,
            qps=settings.upstream_qps,
            max_concurrent_tasks=settings.max_concurrent_tasks,
            transport=transport if transport is not None else upstream_transport(settings),
            clock=client_clock,
            observer=metrics.upstream_attempt,  # latency and error codes for /metrics
            shared_limits=limits,
        )
    except BaseException:
        if limits is not None:
            await limits.aclose()
        await store.close()
        raise
    if notifier is None:
        from bot.chat.notifier import TelegramNotifier

        notifier = TelegramNotifier(bot, settings=settings, store=store)
    # Polls planned from the generation times learnt so far, kept in the store across restarts.
    learner = await PollingLearner.open(store.timings)
    prepared = PreparedCache.beside(settings.db_path)
    runner = JobRunner(
        store, client, notifier, settings=settings, clock=clock, learner=learner, prepared=prepared
    )
    return Services(settings, store, client, runner, notifier, albums=AlbumCollector(album_window),
                    upstream_limits=limits, prepared=prepared, learner=learner)  # fmt: skip
