"""Builds the Application: the one place handlers are registered, and the services' lifecycle.

Order matters and is all here. Group -5 claims the update in the durable inbox and drops one some process
already took (bot/ops/dedupe.py: webhook re-deliveries, several processes, replays). Group -4 takes the
two payment updates (a pre-checkout query must always be answered, a successful payment always credited,
whoever sent it: bot/handlers/payments.py), group -3 is private mode (strangers are refused before anything
about them is stored beyond the inbox's copy, cleared at the claim or, for a replay-safe request, once
handled: bot/handlers/access.py), group -2 is the group gate (in groups, drop what is not addressed to us),
group -1 the user gate (drop edited messages in every chat, upsert the user, stop banned users). Group 0 is
one ordered list: commands first (the admin commands before the user's /quota, since `/quota <user>` is
theirs), then photos, then buttons (known patterns before the stale-button catch-all), then group
membership and settings, and last the catch-alls for unknown commands and stray text, so a new handler
goes in above them.

Lifecycle: post_init opens the services and starts the runner (which resumes unfinished tasks), then
publishes the command list per language; post_stop stops the runner while the bot can still talk (a photo
being sent may finish); post_shutdown closes the client and the store. `start_application` /
`stop_application` run the same sequence as `run_polling` for callers that already have an event loop
(the demo, the end-to-end tests).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    PreCheckoutQueryHandler,
    TypeHandler,
    filters,
)

from bot.chat import menus
from bot.config import Settings
from bot.handlers import (
    access,
    account,
    admin,
    errors,
    gate,
    generate,
    groups,
    images,
    invite,
    payments,
    prompt,
    refunds,
    settings,
    start,
)
from bot.handlers.context import CONTEXT_TYPES, SERVICES_KEY, BotContext
from bot.handlers.privacy import privacy_handlers
from bot.jobs.worker_lock import held_here, running_ids
from bot.ops.dedupe import GROUP as ONCE_GROUP
from bot.ops.dedupe import UpdateOnce
from bot.ops.inbox import INBOX_KEY, Claimers, Inbox, InboxProcessor
from bot.ops.looplag import LagProbe
from bot.ops.polling import InboxUpdater
from bot.ops.ratelimit import telegram_rate_limiter
from bot.proxy import with_telegram_proxy
from bot.services import Services, ServicesFactory, open_services

log = logging.getLogger(__name__)

App = Application[Any, BotContext, Any, Any, Any, Any]

#: New messages only: an edited caption or text must not store a photo again or repeat a reply. The user
#: gate already stops every edit (CommandHandler would match edited commands); this keeps the message
#: handlers right on their own.
NEW = filters.UpdateType.MESSAGE
PRIVATE = filters.ChatType.PRIVATE

# Telegram's limits are enforced by PTB's AIORateLimiter (bot/ops/ratelimit.py: TELEGRAM_SEND_RATE messages/s
# overall, shared by the processes on PostgreSQL; PTB's 20/minute per group; retries after a 429). What it
# lacks (per-chat pacing, fewer edits in groups) is bot/chat/pacing.py.

#: Commands shown in Telegram's menu in private chats, in this order; descriptions are catalogue keys
#: `command.<name>`. Groups and owners get their own menus (bot/chat/menus.py).
MENU_COMMANDS = menus.USER_COMMANDS


def handler_list() -> list[BaseHandler[Any, Any, Any]]:
    """Every group-0 handler, first match wins."""
    return [
        *admin.admin_handlers(),  # above the user's /quota, so `/quota <user>` reaches the admin view
        *(CommandHandler(name, cb, filters=PRIVATE) for name, cb in refunds.COMMANDS.items()),
        CommandHandler("start", start.start),
        CommandHandler("help", start.help_command),
        CommandHandler(["anime", "generate"], generate.anime),
        CommandHandler("cancel", generate.cancel),
        CommandHandler("prompt", prompt.prompt),
        CommandHandler("face", images.face),
        CommandHandler("style", images.style),
        CommandHandler("settings", settings.show),
        CommandHandler("quota", account.quota),
        CommandHandler("history", account.history),
        CommandHandler("lang", account.lang),
        CommandHandler("buy", payments.buy, filters=PRIVATE),
        CommandHandler("paysupport", payments.paysupport),
        CommandHandler("invite", invite.invite, filters=PRIVATE),
        *privacy_handlers(),  # /forgetme and its confirmation buttons
        MessageHandler(NEW & (filters.PHOTO | filters.Document.ALL), images.on_image),
        CallbackQueryHandler(settings.on_button, pattern=r"^(set|menu):"),
        CallbackQueryHandler(generate.repeat, pattern=r"^(again|seed):"),
        CallbackQueryHandler(generate.send_again, pattern=r"^resend:"),
        CallbackQueryHandler(payments.on_buy_button, pattern=rf"^{payments.BUTTON_PREFIX}"),
        CallbackQueryHandler(start.stale_button),
        *groups.group_handlers(),
        # New handlers go above this line: below are the catch-alls.
        MessageHandler(NEW & filters.COMMAND, start.unknown_command),
        MessageHandler(NEW & filters.TEXT & filters.ChatType.PRIVATE, start.text_hint),
    ]


#: bot_data key of the event-loop lag probe (LAG_PROBE_FILE, benchmarks only).
LAG_PROBE_KEY = "lag_probe"


def build_application(
    settings: Settings, *, services_factory: ServicesFactory | None = None, updater: bool = True
) -> App:
    """The configured Application; nothing is opened until it starts (post_init).

    `updater=True` gives it the inbox's Updater (bot/ops/polling.py: getUpdates, each batch stored before
    it is confirmed); `updater=False` none: the webhook (updates come in over HTTP, bot/ops/webhook.py)
    and the worker (no updates of its own; it still replays what a stopped process left in the inbox).
    """
    factory = services_factory or open_services

    async def post_init(app: App) -> None:
        if settings.lag_probe_file is not None:  # benchmarks only (LAG_PROBE_FILE)
            probe = app.bot_data[LAG_PROBE_KEY] = LagProbe(settings.lag_probe_file)
            probe.start()
        services = await factory(settings, app.bot)
        app.bot_data[SERVICES_KEY] = services
        await services.runner.start()
        await inbox.open(services.store)  # replays what a stopped process received and nobody handled
        await publish_commands(app)

    async def post_stop(app: App) -> None:
        await inbox.close()
        services: Services | None = app.bot_data.get(SERVICES_KEY)
        if services is not None:
            await services.stop_runner()
        probe: LagProbe | None = app.bot_data.pop(LAG_PROBE_KEY, None)
        if probe is not None:
            await probe.stop()

    async def post_shutdown(app: App) -> None:
        services: Services | None = app.bot_data.pop(SERVICES_KEY, None)
        if services is not None:
            await services.close()

    inbox = Inbox(claimers(settings))
    builder = with_telegram_proxy(Application.builder(), settings).updater(None)
    application: App = (
        builder.token(settings.telegram_bot_token.value)
        .base_url(settings.telegram_api_url)
        .base_file_url(settings.telegram_file_url)
        .rate_limiter(telegram_rate_limiter(settings))
        .concurrent_updates(InboxProcessor(inbox))
        .context_types(CONTEXT_TYPES)
        .post_init(post_init)
        .post_stop(post_stop)
        .post_shutdown(post_shutdown)
        .build()
    )
    inbox.attach(application.bot, application.update_queue)
    application.bot_data[INBOX_KEY] = inbox
    if updater:  # polls, confirming to Telegram only what the inbox stored
        application.updater = InboxUpdater(application.bot, application.update_queue, inbox)
    application.add_handler(UpdateOnce(inbox).handler(), group=ONCE_GROUP)  # each update once, stored first
    application.add_handler(PreCheckoutQueryHandler(payments.pre_checkout), group=-4)
    application.add_handler(MessageHandler(filters.SUCCESSFUL_PAYMENT, payments.successful_payment), group=-4)
    application.add_handler(TypeHandler(Update, access.guard), group=-3)  # private mode: before any record
    application.add_handler(groups.group_gate_handler(), group=-2)  # groups: only what is addressed to us
    application.add_handler(TypeHandler(Update, gate.admit), group=-1)
    application.add_handlers(handler_list())
    application.add_error_handler(errors.on_error)
    return application


def claimers(settings: Settings) -> Claimers:
    """This process as the inbox's claimer: its WORKER_ID, and the worker locks that tell who is alive."""
    db = settings.database_url.value if settings.database_url is not None else settings.db_path
    worker_id = settings.worker_id

    async def running(ids: Collection[str]) -> set[str]:
        return await running_ids(db, ids)

    return Claimers(worker_id, lambda: held_here(worker_id), running)


async def publish_commands(app: App) -> None:
    """The command menus per scope (private chats, groups, each owner's chat) and the descriptions, in
    English (default) and Chinese (for clients set to Chinese): bot/chat/menus.py."""
    services: Services = app.bot_data[SERVICES_KEY]
    await menus.publish(app.bot, services.settings)


async def start_application(app: App, *, poll_interval: float = 0.0, poll_timeout: int = 10) -> None:
    """What run_polling does before idling, for callers inside a running event loop."""
    await app.initialize()
    if app.post_init is not None:
        await app.post_init(app)
    assert app.updater is not None
    await app.updater.start_polling(
        poll_interval=poll_interval, timeout=poll_timeout, allowed_updates=Update.ALL_TYPES
    )
    await app.start()


async def stop_application(app: App) -> None:
    """What run_polling does on SIGTERM: stop fetching, finish handlers, stop the runner, close."""
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
        if app.post_stop is not None:
            await app.post_stop(app)
    await app.shutdown()
    if app.post_shutdown is not None:
        await app.post_shutdown(app)
