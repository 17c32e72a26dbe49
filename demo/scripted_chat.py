"""`make demo`: the real bot, talking to a fake Telegram and the upstream emulator, all in this process.

    python -m demo.scripted_chat --out demo-output

Nothing is mocked inside the bot: the Application built by `bot.app.build_application` long-polls the fake
Bot API over HTTP, the runner calls the emulator through the real PortraitClient (signed requests, over an
in-process ASGI transport), and the SQLite store lives in a temporary directory. The script plays one
conversation (start, selfie, style, prompt, portrait, a prompt the content audit rejects, quota), prints the
transcript and writes the portraits the bot sent to `--out`. Offline, in a few seconds.

The input pictures are drawn here with Pillow (a face-like selfie, a colourful style image), so the
repository holds no binary files.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
from PIL import Image, ImageDraw

from api_client.emulator import EmulatorConfig, create_app
from bot.app import App, build_application, start_application, stop_application
from bot.config import Secret, Settings
from bot.handlers.context import SERVICES_KEY
from bot.replies import t
from bot.services import open_services
from fake_telegram import FakeChat, FakeMessage, FakeTelegram, FakeUser, serve

EMULATOR_URL = "http://emulator.invalid"  # never resolved: requests go through the ASGI transport
ACCESS_KEY, SECRET_KEY = "AKDEMO", "SKDEMO"


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def draw_selfie(size: int = 640) -> bytes:
    """A face-like picture: hair, skin oval, eyes, brows, nose, smile, on a soft background."""
    image = Image.new("RGB", (size, size), (186, 214, 235))
    draw = ImageDraw.Draw(image)
    s = size / 640

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        return (x0 * s, y0 * s, x1 * s, y1 * s)

    draw.rectangle(box(150, 470, 490, 640), fill=(70, 90, 150))  # shoulders
    draw.ellipse(box(150, 70, 490, 470), fill=(60, 40, 30))  # hair
    draw.ellipse(box(190, 130, 450, 450), fill=(241, 200, 170))  # face
    for x in (255, 385):
        draw.ellipse(box(x - 28, 250, x + 28, 285), fill=(255, 255, 255))
        draw.ellipse(box(x - 12, 255, x + 12, 280), fill=(70, 50, 40))
        draw.line(box(x - 32, 225, x + 32, 220), fill=(60, 40, 30), width=max(1, int(8 * s)))
    draw.line(box(320, 290, 310, 345), fill=(200, 150, 130), width=max(1, int(5 * s)))
    draw.arc(box(265, 340, 375, 400), start=15, end=165, fill=(180, 70, 80), width=max(1, int(7 * s)))
    return _jpeg(image)


def draw_style(size: int = 640) -> bytes:
    """A colourful illustration-like picture: a gradient sky, bold circles and stripes."""
    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    for y in range(size):
        k = y / size
        draw.line((0, y, size, y), fill=(int(255 * (1 - k) + 90 * k), int(120 + 60 * k), int(180 + 75 * k)))
    colours = [(255, 90, 120), (255, 200, 60), (80, 200, 170), (120, 90, 230), (255, 140, 40)]
    for i, colour in enumerate(colours):
        r = size // (5 + i)
        cx, cy = (i * 137) % size, (i * 211 + size // 3) % size
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour, outline=(30, 30, 60), width=4)
    for i in range(0, size, size // 8):
        draw.line((i, size, i + size // 3, size * 2 // 3), fill=(30, 30, 60), width=6)
    return _jpeg(image)


def demo_settings(token: str, api_url: str, db_path: Path) -> Settings:
    """Production settings except the URLs, the database and a snappy status message."""
    return Settings(
        telegram_bot_token=Secret(token),
        volc_access_key=Secret(ACCESS_KEY),
        volc_secret_key=Secret(SECRET_KEY),
        telegram_api_url=api_url,
        volc_endpoint=EMULATOR_URL,
        db_path=db_path,
        daily_free_quota=3,
        status_edit_interval=0.5,
        chat_send_interval=0.0,  # a scripted chat: no need to pace one message a second
    )


class Conversation:
    """One user in a private chat: send something, wait for the bot's answer to it."""

    def __init__(self, fake: FakeTelegram, user: FakeUser) -> None:
        self.fake, self.user = fake, user
        self.chat: FakeChat = fake.private_chat(user)
        self.app: App | None = None

    async def settle(self) -> None:
        """Wait until the bot's job runner is idle, so the transcript reads in order."""
        assert self.app is not None
        runner = self.app.bot_data[SERVICES_KEY].runner
        await self.fake.wait_for(lambda: not runner.running or None, timeout=20)

    async def press(self, message: FakeMessage, label: str, expect: Callable[[FakeMessage], bool]) -> None:
        """Press the button labelled `label` and wait for the bot's next message matching `expect`."""
        newest = self.fake.sent_messages(self.chat.id)[-1].message_id
        self.fake.click(self.user, message, text=label)
        await self.fake.wait_for_message(self.chat, expect, after=newest, timeout=20)

    async def text(self, text: str, expect: Callable[[FakeMessage], bool] | str | None = None) -> FakeMessage:
        sent = self.fake.send_text(self.user, self.chat, text)
        return await self.fake.wait_for_message(self.chat, expect, after=sent.message_id, timeout=20)

    async def photo(self, data: bytes, caption: str | None = None) -> FakeMessage:
        sent = self.fake.send_photo(self.user, self.chat, data, caption=caption)
        return await self.fake.wait_for_message(self.chat, after=sent.message_id, timeout=20)


def _has_photo(message: FakeMessage) -> bool:
    return bool(message.photo)


async def play(out_dir: Path) -> tuple[str, list[Path]]:
    """Run the scripted chat; returns the transcript and the files written."""
    emulator = create_app(
        EmulatorConfig(access_key=ACCESS_KEY, secret_key=SECRET_KEY, queue_seconds=0.5, generate_seconds=1.0)
    )
    fake = FakeTelegram()
    alice = Conversation(fake, fake.add_user(1001, "Alice", "alice", "en"))
    with tempfile.TemporaryDirectory() as tmp:
        async with serve(fake) as url:
            settings = demo_settings(fake.token, f"{url}/bot", Path(tmp) / "demo.db")
            transport = httpx.ASGITransport(app=emulator)
            app: App = build_application(
                settings, services_factory=partial(open_services, transport=transport, album_window=0.3)
            )
            alice.app = app
            await start_application(app)
            try:
                await _script(alice)
            finally:
                await stop_application(app)
    return fake.transcript(), _save_results(fake, alice.chat, out_dir)


async def _script(alice: Conversation) -> None:
    await alice.text("/start")
    await alice.photo(draw_selfie())
    await alice.text("/style")
    await alice.photo(draw_style())
    await alice.text("/prompt smiling, red scarf, autumn leaves")
    portrait = await alice.text("/anime", _has_photo)
    await alice.settle()
    await alice.press(portrait, t("button.new_seed", "en"), _has_photo)
    await alice.settle()
    refusal = t("error.risk.input_text", "en")
    await alice.text("/anime a risky pose", lambda m: m.body == refusal)
    await alice.settle()
    await alice.text("/quota")


def _save_results(fake: FakeTelegram, chat: FakeChat, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for message in fake.sent_messages(chat.id):
        stored = message.document or (message.photo[-1] if message.photo else None)
        if stored is None:
            continue
        kind = "full" if message.document else "photo"
        path = out_dir / f"portrait-{message.message_id}-{kind}.jpg"
        path.write_bytes(fake.file_bytes(stored.file_id))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="where to write the portraits")
    args = parser.parse_args(argv)
    started = time.monotonic()
    transcript, files = asyncio.run(play(args.out))
    print(transcript)
    print()
    for path in files:
        print(f"wrote {path}")
    print(f"demo finished in {time.monotonic() - started:.1f} s")
    return 0 if files else 1


if __name__ == "__main__":
    sys.exit(main())
