"""The three roles a `portrait-bot` process can play, and how each starts and stops.

- polling (`run`): long-polls Telegram (bot/ops/polling.py: a batch is stored before it is confirmed) and
  runs jobs. Telegram refuses a second poller per bot token: on
  SQLite run one; on PostgreSQL any number, of which the holder of an advisory lock polls and the others run
  jobs only until one of them takes over (bot/ops/poller.py).
- webhook (`run --webhook`, or WEBHOOK_URL set): receives updates over HTTP and runs jobs; any number of
  them behind one URL, sharing the database (each update is stored, then handled once: bot/ops/dedupe.py).
- worker (`worker`): runs jobs only. It still has the Bot (results and progress are sent from here) but no
  Updater and no webhook; like every role it replays updates a stopped process left in the inbox.
`--no-jobs` makes a polling or webhook process leave every task to workers (its handlers only create them).

Start order (each step needs the one before): services open and the runner resumes (post_init), the
Application starts, the HTTP server listens, then updates are asked for (polling starts, or setWebhook:
Telegram posts at once, so the server must already answer). Stop order is the reverse, so nothing is taken
that could not be finished: stop taking updates (the server and the poller), let handlers in flight finish,
stop the runner (a photo being sent gets its grace), close the services.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from enum import StrEnum

from telegram import Update

from bot.app import App, build_application, stop_application
from bot.config import Settings
from bot.config_values import Listen
from bot.ops import metrics, webhook
from bot.ops.health import ProcessView
from bot.ops.http import HttpServer, ops_app
from bot.ops.poller import PollerElection, poller_lock_name
from bot.services import ServicesFactory
from storage.pg_leader import PgLeaderLock

log = logging.getLogger(__name__)

#: Long-poll timeout (seconds) of the polling role.
POLL_TIMEOUT = 10


class Role(StrEnum):
    POLLING = "polling"
    WEBHOOK = "webhook"
    WORKER = "worker"


@dataclass
class RunningProcess:
    """A started process: its Application, what the endpoints see, and its HTTP server (if any)."""

    app: App
    view: ProcessView
    server: HttpServer | None

    @property
    def port(self) -> int | None:
        return self.server.port if self.server is not None else None


def http_listen(settings: Settings, role: Role) -> Listen | None:
    """Where this role serves HTTP: WEBHOOK_LISTEN for the webhook, METRICS_PORT (all interfaces) else."""
    if role is Role.WEBHOOK:
        return settings.webhook_listen
    if settings.metrics_port is not None:
        return Listen("0.0.0.0", settings.metrics_port)
    return None


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    role: Role,
    *,
    services_factory: ServicesFactory | None = None,
    listen: Listen | None = None,
) -> AsyncIterator[RunningProcess]:
    """Start a process of `role` in this event loop, yield it, and stop it gracefully on exit.

    `listen` overrides where HTTP is served (tests bind port 0); `services_factory` as in build_application.
    """
    if role is Role.WORKER:
        settings = replace(settings, run_jobs=True)
    app = build_application(settings, services_factory=services_factory, updater=role is Role.POLLING)
    view = ProcessView(app, role.value)
    metrics.describe_process(role.value, settings.worker_id)
    where = listen or http_listen(settings, role)
    server: HttpServer | None = None
    election: PollerElection | None = None
    view.lag.start()
    try:
        await app.initialize()
        if app.post_init is not None:
            await app.post_init(app)  # services open, runner resumed
        await app.start()
        if where is not None:
            routes = [webhook.webhook_route(app, settings)] if role is Role.WEBHOOK else []
            server = HttpServer(ops_app(view, *routes), where)
            await server.start()
            log.info("serving %s on %s:%d", "the webhook and /healthz, /readyz, /metrics" if routes
                     else "/healthz, /readyz, /metrics", where.host, server.port)  # fmt: skip
        if role is Role.POLLING:
            election = await _start_polling(app, view, settings)
        elif role is Role.WEBHOOK:
            await webhook.register(app, settings)
            view.webhook_set = True
        log.info("ready: %s%s", role.value, "" if settings.run_jobs else " (no jobs)")
        yield RunningProcess(app, view, server)
    finally:
        view.stopping = True
        if election is not None:
            await election.stop()
        if server is not None:
            await server.stop()
        await stop_application(app)
        await view.lag.stop()


async def _start_polling(app: App, view: ProcessView, settings: Settings) -> PollerElection | None:
    """Poll now (SQLite: the one process), or when elected (PostgreSQL: returns the running election)."""
    updater = app.updater
    assert updater is not None

    async def start() -> None:
        await updater.start_polling(timeout=POLL_TIMEOUT, allowed_updates=Update.ALL_TYPES)
        view.poll_standby = False

    async def stop() -> None:
        view.poll_standby = True
        if updater.running:
            await updater.stop()

    if settings.database_url is None:
        await start()
        return None
    view.poll_standby = True
    lock = PgLeaderLock(settings.database_url.value, poller_lock_name(settings.telegram_bot_token.value))
    election = PollerElection(lock, start, stop)
    await election.start()
    return election


async def serve(settings: Settings, role: Role) -> None:
    """Run `role` until SIGINT or SIGTERM, then stop gracefully (the console script's main loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with running(settings, role):
            await stop.wait()
            log.info("stopping")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
