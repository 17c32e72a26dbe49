"""A stored style image can be removed again: `/style clear`, or the button on the /settings screen."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.replies import LANGUAGES, t
from fake_telegram import FakeMessage
from storage import TaskState, UserSettings
from tests.e2e.conftest import Harness, Person, is_photo, says
from tests.e2e.images import draw_selfie, draw_style

REMOVE = "🗑 Remove style image"


def labels(message: FakeMessage) -> list[str]:
    return [text for row in message.buttons for text, _ in row]


async def stored(harness: Harness, person: Person) -> UserSettings:
    return await harness.services.store.users.get_settings(person.user.id)


async def with_selfie_and_style(harness: Harness, alice: Person) -> None:
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    await alice.photo(draw_style(), caption="/style", expect=says("style.saved"))
    assert (await stored(harness, alice)).style_file_id is not None


async def test_style_clear_removes_the_style_image_and_the_next_portrait_goes_without_it(
    harness: Harness, alice: Person
) -> None:
    await with_selfie_and_style(harness, alice)
    await alice.say("/style clear", says("style.cleared"))
    current = await stored(harness, alice)
    assert (current.style_file_id, current.style_unique_id) == (None, None)
    assert current.selfie_file_id is not None  # the selfie stays
    await alice.say("/anime", is_photo)
    task = await harness.until_state(alice, TaskState.DONE)
    assert task.style_file_id is None
    (upstream,) = harness.emulator_state.tasks.values()
    assert len(upstream.images) == 1 and upstream.style_index is None


async def test_style_clear_without_a_style_image_says_so_and_changes_nothing(
    harness: Harness, alice: Person
) -> None:
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    before = await stored(harness, alice)
    await alice.say("/style clear", says("style.none"))
    assert await stored(harness, alice) == before


async def test_style_offers_clear_when_one_is_stored_and_clear_cancels_the_wait(
    harness: Harness, alice: Person
) -> None:
    await with_selfie_and_style(harness, alice)
    await alice.say("/style", says("style.waiting_replace"))
    await alice.say("/style clear", says("style.cleared"))
    # No longer waiting for a style image: the next photo is the selfie again.
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    assert (await stored(harness, alice)).style_file_id is None


async def test_the_settings_button_removes_the_style_image_and_then_disappears(
    harness: Harness, alice: Person
) -> None:
    screen = await alice.say("/settings")
    assert REMOVE not in labels(screen)
    await with_selfie_and_style(harness, alice)
    screen = await alice.say("/settings")
    assert REMOVE in labels(screen)
    answer = await alice.tap(screen, "set:style:clear")
    assert answer["text"] == t("style.cleared", "en")
    assert REMOVE not in labels(screen) and "Size: Square" in labels(screen)
    current = await stored(harness, alice)
    assert current.style_file_id is None and current.selfie_file_id is not None


async def test_reset_keeps_the_style_image(harness: Harness, alice: Person) -> None:
    await with_selfie_and_style(harness, alice)
    screen = await alice.say("/settings")
    answer = await alice.click(screen, "set:reset:all")  # nothing to reset: the screen stays as it was
    assert answer["text"] == t("settings.saved", "en")
    assert (await stored(harness, alice)).style_file_id is not None
    assert REMOVE in labels(screen)


async def test_an_old_remove_button_after_the_image_is_gone_is_harmless(
    harness: Harness, alice: Person
) -> None:
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    before = await stored(harness, alice)
    assert harness.app is not None
    old = InlineKeyboardMarkup([[InlineKeyboardButton(REMOVE, callback_data="set:style:clear")]])
    await harness.app.bot.send_message(alice.chat.id, t("settings.title", "en"), reply_markup=old)
    answer = await alice.tap(alice.sent()[-1], "set:style:clear")
    assert answer["text"] == t("style.cleared", "en")
    assert await stored(harness, alice) == before


def test_help_and_the_style_hint_name_the_command_in_every_language() -> None:
    for lang in LANGUAGES:
        assert "/style clear" in t("help.text", lang, max_prompt=300)
        assert "/style clear" in t("error.hint.style", lang)
        assert "/style clear" in t("style.waiting_replace", lang)


async def test_style_clear_in_a_group(harness: Harness) -> None:
    """In a group the style image is set by replying /style to it (docs/GROUPS.md) and dropped the same way
    as in private: it is the user's, wherever they set it."""
    alice = harness.person(1001, "Alice")
    group = harness.fake.group(-100901, "Friends", members=[alice.user])
    style = harness.fake.send_photo(alice.user, group, draw_style())
    request = harness.fake.send_text(alice.user, group, "/style", reply_to=style)
    await harness.fake.wait_for_message(group, says("style.saved"), after=request.message_id)
    request = harness.fake.send_text(alice.user, group, "/style clear")
    await harness.fake.wait_for_message(group, says("style.cleared"), after=request.message_id)
    assert (await stored(harness, alice)).style_file_id is None
