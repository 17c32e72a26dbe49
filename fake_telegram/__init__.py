"""A fake Telegram Bot API (ASGI) for end-to-end tests and `make demo`.

fake = FakeTelegram()
alice = fake.add_user(1001, "Alice", "alice")
async with serve(fake) as url:
    app = application_builder(fake.token, url).build()  # or .base_url(f"{url}/bot")...
    ...start polling...
    fake.send_text(alice, fake.private_chat(alice), "/start")
    reply = await fake.wait_for_message(alice.id, "Welcome")
print(fake.transcript())
"""

from fake_telegram.app import create_app
from fake_telegram.core import DEFAULT_TOKEN
from fake_telegram.errors import ApiError
from fake_telegram.fake import FakeTelegram
from fake_telegram.model import BotCall, FakeChat, FakeMessage, FakeUser, StoredFile
from fake_telegram.ptb import application_builder, make_bot
from fake_telegram.server import serve

__all__ = [
    "DEFAULT_TOKEN",
    "ApiError",
    "BotCall",
    "FakeChat",
    "FakeMessage",
    "FakeTelegram",
    "FakeUser",
    "StoredFile",
    "application_builder",
    "create_app",
    "make_bot",
    "serve",
]
