"""A fake Telegram Bot API (ASGI) for end-to-end tests and `make demo`.

fake = FakeTelegram()
alice = fake.add_user(1001, "Alice")
async with serve(fake) as url:
    app = Application.builder().token(fake.token).base_url(f"{url}/bot").base_file_url(f"{url}/file/bot")...
    fake.send_text(alice, fake.private_chat(alice), "/start")
    reply = await fake.wait_for_message(alice.id, "Welcome")
print(fake.transcript())
"""

from bot.fake_telegram.app import create_app
from bot.fake_telegram.core import DEFAULT_TOKEN
from bot.fake_telegram.errors import ApiError
from bot.fake_telegram.fake import FakeTelegram
from bot.fake_telegram.model import BotCall, FakeChat, FakeMessage, FakeUser, StoredFile
from bot.fake_telegram.server import serve

__all__ = [
    "DEFAULT_TOKEN",
    "ApiError",
    "BotCall",
    "FakeChat",
    "FakeMessage",
    "FakeTelegram",
    "FakeUser",
    "StoredFile",
    "create_app",
    "serve",
]
