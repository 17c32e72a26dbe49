"""The watermark corner, the setting added through the table: chosen in /settings, drawn in that corner."""

from __future__ import annotations

from io import BytesIO

from PIL import Image, ImageChops

from bot.replies import t
from fake_telegram import FakeMessage
from storage import TaskState
from tests.e2e.conftest import Harness, Person, is_photo, says
from tests.e2e.images import draw_selfie


def labels(message: FakeMessage) -> list[str]:
    return [text for row in message.buttons for text, _ in row]


async def portrait(harness: Harness, alice: Person) -> Image.Image:
    """Ask for a portrait and return the delivered photo's pixels."""
    photo = await alice.say("/anime", is_photo)
    await harness.until_state(alice, TaskState.DONE)
    return Image.open(BytesIO(harness.fake.file_bytes(photo.photo[-1].file_id))).convert("L")


async def test_the_corner_is_offered_once_the_watermark_is_on_and_reset_restores_it(
    harness: Harness, alice: Person
) -> None:
    screen = await alice.say("/settings")
    assert not any(label.startswith("Watermark corner") for label in labels(screen))
    await alice.tap(screen, "set:wm:on")
    assert "Watermark corner: Bottom right" in labels(screen)
    await alice.tap(screen, "menu:wmp")
    assert labels(screen) == ["Top left", "Top right", "Bottom left", "✓ Bottom right", "⬅️ Back"]
    answer = await alice.tap(screen, "set:wmp:top_left")
    assert answer["text"] == t("settings.saved", "en")
    assert "Watermark corner: Top left" in labels(screen)
    assert (await harness.services.store.users.get_settings(alice.user.id)).watermark_position == 2
    await alice.tap(screen, "set:reset:all")
    current = await harness.services.store.users.get_settings(alice.user.id)
    assert (current.watermark, current.watermark_position) == (False, 0)


async def test_the_mark_is_drawn_in_the_chosen_corner(harness: Harness, alice: Person) -> None:
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    # A fixed seed: both portraits are the same picture, so they differ only where the mark is.
    await harness.services.store.users.update_settings(alice.user.id, seed=4242)
    plain = await portrait(harness, alice)
    screen = await alice.say("/settings")
    await alice.tap(screen, "set:wm:on")
    await alice.tap(screen, "menu:wmp")
    await alice.tap(screen, "set:wmp:top_left")
    marked = await portrait(harness, alice)
    changed = ImageChops.difference(plain, marked).point(lambda level: 255 if level > 40 else 0).getbbox()
    assert changed is not None, "no watermark was drawn"
    _, _, right, bottom = changed
    assert right <= plain.width // 2 and bottom <= plain.height // 2, f"the mark is at {changed}"
