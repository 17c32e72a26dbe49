"""Every received image is downloaded and decoded in full when it arrives, with bounded memory.

A picture whose header is fine but whose data is cut off used to be accepted and stored, and every later
generation then failed. Sizes come from metadata before anything is downloaded; downloads and checks run
at most MAX_CONCURRENT_DOWNLOADS at a time in the whole process.
"""

from __future__ import annotations

import io
import tracemalloc

import pytest
from PIL import Image

from bot.handlers.downloads import MAX_DOWNLOAD_BYTES
from storage import UserSettings
from tests.e2e.conftest import WAIT, Harness, HarnessFactory, Person, says
from tests.e2e.images import draw_selfie, draw_style, jpeg

MB = 1024 * 1024


def noisy(size: tuple[int, int] = (640, 480)) -> Image.Image:
    return Image.effect_noise(size, 60).convert("RGB")


def truncated(fmt: str) -> bytes:
    """A picture cut off after 60 %: Pillow reads its header, but its pixels cannot be decoded."""
    buffer = io.BytesIO()
    noisy().save(buffer, format=fmt)
    whole = buffer.getvalue()
    return whole[: len(whole) * 6 // 10]


def padded_jpeg(total: int) -> bytes:
    """A valid JPEG followed by filler up to `total` bytes (decoders stop at the end-of-image marker):
    as large as a file can be while still being accepted, so each one is downloaded whole."""
    head = jpeg(Image.open(io.BytesIO(draw_selfie(400))).convert("RGB"))
    return head + b"\0" * (total - len(head))


async def stored(harness: Harness, person: Person) -> UserSettings:
    return await harness.services.store.users.get_settings(person.user.id)


async def test_a_truncated_image_file_is_refused_when_it_arrives(harness: Harness, alice: Person) -> None:
    for fmt, mime in (("JPEG", "image/jpeg"), ("PNG", "image/png")):
        reply = await alice.document(truncated(fmt), f"me.{fmt.lower()}", mime)
        assert reply.body == alice.text("upload.not_image")
    assert (await stored(harness, alice)).selfie_file_id is None


async def test_a_truncated_photo_is_refused_as_selfie_and_as_style(harness: Harness, alice: Person) -> None:
    await alice.photo(truncated("JPEG"), expect=says("upload.not_image"))
    await alice.say("/style", says("style.waiting"))
    await alice.photo(truncated("JPEG"), expect=says("upload.not_image"))
    await alice.photo(truncated("PNG"), caption="/style", expect=says("upload.not_image"))
    settings = await stored(harness, alice)
    assert settings.selfie_file_id is None and settings.style_file_id is None
    await alice.photo(draw_style(), caption="/style", expect=says("style.saved"))  # a whole one still works


async def test_a_file_over_20_mb_is_refused_from_its_metadata(harness: Harness, alice: Person) -> None:
    reply = await alice.document(padded_jpeg(30 * MB), "scan.jpg", "image/jpeg")
    assert reply.body == alice.text("upload.too_large", max_mb=20)
    assert harness.fake.calls_to("getFile") == []  # refused before asking for the file


async def test_an_unsized_file_is_cut_off_at_the_limit(harness: Harness, alice: Person) -> None:
    harness.fake.max_download = None  # a self-hosted Bot API server serves files of any size
    sent = harness.fake.send_document(
        alice.user, alice.chat, padded_jpeg(25 * MB), "big.jpg", "image/jpeg", report_size=False
    )
    await alice.reply_after(sent, says("upload.too_large", max_mb=20))
    downloads = harness.services.downloads
    assert MAX_DOWNLOAD_BYTES < downloads.peak_held <= MAX_DOWNLOAD_BYTES + MB
    assert downloads.held == 0


async def test_a_large_file_that_is_not_an_image_stops_after_its_first_bytes(
    harness: Harness, alice: Person
) -> None:
    reply = await alice.document(b"%PDF-1.7" + b"\0" * (19 * MB), "scan.jpg", "image/jpeg")
    assert reply.body == alice.text("upload.not_image")
    assert harness.services.downloads.peak_held < MB


@pytest.mark.slow  # 1.9 GB through the fake's HTTP server, under tracemalloc
async def test_a_hundred_large_files_at_once_keep_memory_bounded(make_harness: HarnessFactory) -> None:
    """Everything the process allocates (bot, fake Telegram, HTTP) while a hundred 19 MB image files are
    downloaded and checked stays under (limit + 1) x 20 MB; before the bound it grew with every file."""
    limit = 2
    harness = await make_harness(max_concurrent_downloads=limit)
    people = [harness.person(5000 + n, f"User{n}") for n in range(100)]
    data = padded_jpeg(19_000_000)
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        sent = [harness.fake.send_document(p.user, p.chat, data, "me.jpg", "image/jpeg") for p in people]
        for person, message in zip(people, sent, strict=True):
            await harness.fake.wait_for_message(
                person.chat, says("face.saved"), after=message.message_id, timeout=WAIT * 6
            )
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert peak <= (limit + 1) * MAX_DOWNLOAD_BYTES, f"peak {peak / MB:.0f} MB"
    downloads = harness.services.downloads
    assert downloads.peak_active == limit
    assert downloads.peak_held <= limit * (MAX_DOWNLOAD_BYTES + MB)
    for person in people[:3]:
        assert (await stored(harness, person)).selfie_file_id is not None
