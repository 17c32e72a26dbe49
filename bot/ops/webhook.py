"""Updates over HTTP: the endpoint Telegram posts to, and the setWebhook call that points Telegram at it.

Following python-telegram-bot's custom-webhook example: the Application runs without an Updater, and the
endpoint checks, stores and enqueues; the Application's own loop handles the update. Why store before the
200: once Telegram has its 200 it never sends the update again, so an update only queued in memory would
die with a killed process. The store is the inbox's one cheap insert (bot/ops/inbox.py; a duplicate
conflicts and is answered 200 with nothing handled); nothing slower (the claim, the handlers) happens
before the answer, since Telegram waits for it before sending the next updates. A store that fails is
answered 503: Telegram sends the update again.

- The secret: setWebhook registers WEBHOOK_SECRET, Telegram sends it back in every request's
  `X-Telegram-Bot-Api-Secret-Token`; a request without it (anyone who found the URL) gets 403 and nothing
  is read or handled. Compared in constant time; never logged.
- A process that is stopping answers 503, so Telegram retries it (another process behind the same URL
  takes it).
- The webhook is never deleted on stop: the other processes behind the URL keep serving it.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Final
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Update

from bot.app import App
from bot.config import Settings
from bot.ops.inbox import INBOX_KEY, Inbox

log = logging.getLogger(__name__)

SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"
#: Telegram's own cap is 100; 40 is its default.
MAX_CONNECTIONS: Final = 40
#: An update is a few KB; anything far bigger is not from Telegram.
MAX_BODY_BYTES: Final = 1_000_000


def webhook_path(settings: Settings) -> str:
    """The path the endpoint serves: WEBHOOK_URL's (a proxy in front must keep it), `/` when it has none."""
    return urlsplit(settings.webhook_url).path or "/"


def webhook_route(app: App, settings: Settings) -> Route:
    secret = settings.webhook_secret.value.encode()
    inbox: Inbox = app.bot_data[INBOX_KEY]

    async def receive(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not secret or not hmac.compare_digest(given, secret):
            log.warning("webhook: a request without the right secret from %s was refused", _peer(request))
            return Response(status_code=403)
        if not app.running:
            return Response(status_code=503)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return Response(status_code=413)
        try:
            text = body.decode()  # Telegram sends UTF-8; stored as sent
            update = Update.de_json(json.loads(text), app.bot)
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("webhook: a body that is not an update was refused")
            return Response(status_code=400)
        try:
            await inbox.receive_raw(update, text)
        except Exception:
            log.warning("webhook: storing update %d failed; Telegram will send it again", update.update_id,
                        exc_info=True)  # fmt: skip
            return Response(status_code=503)
        return Response()

    return Route(webhook_path(settings), receive, methods=["POST"])


async def register(app: App, settings: Settings) -> None:
    """Point Telegram at WEBHOOK_URL with the secret, for every kind of update the bot handles."""
    await app.bot.set_webhook(
        url=settings.webhook_url,
        secret_token=settings.webhook_secret.value,
        allowed_updates=Update.ALL_TYPES,
        max_connections=MAX_CONNECTIONS,
    )
    log.info("webhook set: %s", settings.webhook_url)


def _peer(request: Request) -> str:
    return request.client.host if request.client is not None else "?"
