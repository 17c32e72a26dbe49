"""A tiny PTB echo bot wired to the fake through real HTTP, and image helpers."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from PIL import Image
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from fake_telegram import FakeTelegram, application_builder, serve


def image_bytes(
    width: int, height: int, fmt: str = "PNG", color: tuple[int, int, int] = (200, 30, 90)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=fmt)
    return buffer.getvalue()


@dataclass
class EchoBot:
    """What the echo bot saw, so tests can compare it with what the fake sent."""

    app: Application  # type: ignore[type-arg]
    url: str
    downloads: list[bytes] = field(default_factory=list)
    commands: list[tuple[str, list[str]]] = field(default_factory=list)
    member_updates: list[tuple[int, str]] = field(default_factory=list)
    migrations: list[tuple[int, int]] = field(default_factory=list)


def build_echo_app(fake: FakeTelegram, url: str, echo: EchoBot | None = None) -> Application:  # type: ignore[type-arg]
    app = application_builder(fake.token, url).build()
    seen = echo

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        if seen is not None:
            seen.commands.append((update.message.text or "", list(context.args or [])))
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Again", callback_data="again:1")]])
        await update.message.reply_text("Hello <b>there</b>", parse_mode="HTML", reply_markup=keyboard)

    async def photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        telegram_file = await update.message.photo[-1].get_file()
        data = bytes(await telegram_file.download_as_bytearray())
        if seen is not None:
            seen.downloads.append(data)
        await update.message.reply_photo(data, caption="your photo")
        await update.message.reply_document(data, filename="full.png", caption="full size")

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Working on it")
        await query.edit_message_text(f"You pressed {query.data}")

    async def member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.my_chat_member
        if seen is not None and change is not None:
            seen.member_updates.append((change.chat.id, change.new_chat_member.status))

    async def migrated(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if seen is not None and message is not None and message.migrate_to_chat_id:
            seen.migrations.append((message.chat.id, message.migrate_to_chat_id))

    app.add_handler(CommandHandler("start", start))
    app.add_handler(MessageHandler(filters.PHOTO, photo))
    app.add_handler(CallbackQueryHandler(pressed))
    app.add_handler(ChatMemberHandler(member, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, migrated))
    return app


@pytest.fixture
def fake() -> FakeTelegram:
    return FakeTelegram(bot_username="EchoTestBot")


@pytest.fixture
async def echo(fake: FakeTelegram) -> AsyncIterator[EchoBot]:
    """The echo bot polling the fake over HTTP, as a deployed bot polls api.telegram.org."""
    async with serve(fake) as url:
        bot = EchoBot(app=None, url=url)  # type: ignore[arg-type]
        bot.app = build_echo_app(fake, url, bot)
        async with bot.app:
            await bot.app.start()
            assert bot.app.updater is not None
            await bot.app.updater.start_polling(poll_interval=0, timeout=1, allowed_updates=Update.ALL_TYPES)
            try:
                yield bot
            finally:
                await bot.app.updater.stop()
                await bot.app.stop()
