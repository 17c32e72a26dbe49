"""How `portrait-bot admin refund` reaches Telegram: a one-off Bot with the bot's own token, URL and proxy.

Kept out of bot/admin/cli.py so the other admin commands keep working without a token and without
importing telegram; only a refund needs Telegram, because only Telegram can give Stars back.
"""

from __future__ import annotations

from telegram import Bot
from telegram.error import TelegramError

from bot.admin.args import AdminError
from bot.admin.refunds import Refunder, RefundRefused
from bot.config import Settings
from bot.proxy import telegram_request

PAYMENT_COLUMNS = ("charge_id", "user_id", "credits", "stars", "state", "reversed", "shortfall", "paid_at")


def cli_refunder(settings: Settings) -> Refunder:
    if not settings.telegram_bot_token:
        raise AdminError("admin.refund.no_token")

    async def refunder(user_id: int, charge_id: str) -> None:
        request = telegram_request(settings)
        bot = Bot(
            settings.telegram_bot_token.value, base_url=settings.telegram_api_url,
            base_file_url=settings.telegram_file_url, request=request,
        )  # fmt: skip
        try:
            async with bot:
                await bot.refund_star_payment(user_id, charge_id)
        except TelegramError as exc:  # BadRequest (unknown, already refunded) or a network failure
            raise RefundRefused(exc.message) from None
        finally:  # a failed getMe leaves the request open (aiohttp would warn of an unclosed session)
            await request.shutdown()

    return refunder
