"""/settings and /prompt: one keyboard message edited in place, every tap answered and stored."""

from __future__ import annotations

from io import BytesIO

from PIL import Image

from bot.preferences import SIZES
from bot.replies import t
from fake_telegram import FakeMessage
from storage import TaskState, UserSettings
from tests.e2e.conftest import Harness, Person, is_photo, says
from tests.e2e.images import draw_selfie


def labels(message: FakeMessage) -> list[str]:
    return [text for row in message.buttons for text, _ in row]


async def stored(harness: Harness, person: Person) -> UserSettings:
    return await harness.services.store.users.get_settings(person.user.id)


async def test_settings_shows_current_values_as_buttons(alice: Person) -> None:
    screen = await alice.say("/settings")
    assert screen.body == t("settings.title", "en")
    assert "Size: Square" in labels(screen) and "Fast mode: off" in labels(screen)


async def test_choosing_a_size_edits_the_same_message_and_stores_it(harness: Harness, alice: Person) -> None:
    screen = await alice.say("/settings")
    answer = await alice.tap(screen, "menu:size")
    assert answer["text"] is None  # answered, with no toast
    assert "✓ Square" in labels(screen)  # the same message now lists the sizes
    answer = await alice.tap(screen, "set:size:portrait")
    assert answer["text"] == t("settings.saved", "en")
    assert "Size: Portrait" in labels(screen)
    current = await stored(harness, alice)
    assert (current.width, current.height) == SIZES["portrait"]
    assert [m.message_id for m in alice.sent()] == [screen.message_id]  # nothing new was sent


async def test_style_and_likeness_choices_are_stored(harness: Harness, alice: Person) -> None:
    screen = await alice.say("/settings")
    await alice.tap(screen, "menu:preset")
    await alice.tap(screen, "set:preset:watercolor")
    await alice.tap(screen, "menu:id")
    await alice.tap(screen, "set:id:style")
    current = await stored(harness, alice)
    assert (current.preset, current.identity) == ("watercolor", "style")
    assert "Style: Watercolour" in labels(screen)


async def test_fast_mode_toggle_explains_its_trade_off(harness: Harness, alice: Person) -> None:
    screen = await alice.say("/settings")
    await alice.tap(screen, "set:hyper:on")
    assert screen.body == t("settings.title_fast", "en")
    assert (await stored(harness, alice)).hyper is True
    await alice.tap(screen, "set:hyper:off")
    assert screen.body == t("settings.title", "en")


async def test_watermark_and_its_language(harness: Harness, alice: Person) -> None:
    screen = await alice.say("/settings")
    await alice.tap(screen, "set:wm:on")
    await alice.tap(screen, "set:wml:zh")
    current = await stored(harness, alice)
    assert current.watermark is True and current.watermark_language == 0
    assert "Watermark: on" in labels(screen) and "Watermark text: Chinese" in labels(screen)


async def test_language_button_redraws_in_the_new_language(harness: Harness, alice: Person) -> None:
    screen = await alice.say("/settings")
    answer = await alice.tap(screen, "set:lang:zh")
    assert answer["text"] == t("settings.saved", "zh")
    assert screen.body == t("settings.title", "zh")
    user = await harness.services.store.users.get(alice.user.id)
    assert user is not None and user.language == "zh"


async def test_reset_restores_the_look_but_keeps_images_and_prompt(harness: Harness, alice: Person) -> None:
    await alice.say("/help")  # the bot has met Alice
    await harness.services.store.users.update_settings(
        alice.user.id, preset="oil", hyper=True, width=864, height=1152, prompt="mine", selfie_file_id="f",
        full_size_file=True,
    )
    screen = await alice.say("/settings")
    await alice.tap(screen, "set:reset:all")
    current = await stored(harness, alice)
    assert (current.preset, current.hyper, current.width) == ("anime", False, 1000)
    assert current.full_size_file is False
    assert (current.prompt, current.selfie_file_id) == ("mine", "f")
    answer = await alice.click(screen, "set:reset:all")  # same screen again: "not modified" is fine
    assert answer["text"] == t("settings.saved", "en")


async def test_done_closes_the_keyboard(alice: Person) -> None:
    screen = await alice.say("/settings")
    await alice.tap(screen, "menu:close")
    assert screen.body == t("settings.closed", "en") and screen.buttons == []


async def test_a_stale_button_gets_a_polite_answer(harness: Harness, alice: Person) -> None:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    assert harness.app is not None
    old = InlineKeyboardMarkup([[InlineKeyboardButton("Old", callback_data="v0:size=big")]])
    await harness.app.bot.send_message(alice.chat.id, "from an older version", reply_markup=old)
    message = alice.sent()[-1]
    answer = await alice.click(message, "v0:size=big")
    assert answer["text"] == t("callback.stale", "en")


async def test_prompt_show_set_clear_and_limit(harness: Harness, alice: Person) -> None:
    await alice.say("/prompt", says("prompt.none", prompt=""))
    await alice.say("/prompt smiling, red scarf", says("prompt.saved", prompt="smiling, red scarf"))
    await alice.say("/prompt", says("prompt.current", prompt="smiling, red scarf"))
    limit = harness.services.settings.max_prompt_length
    reply = await alice.say("/prompt " + "y" * (limit + 1))
    assert reply.body == t("error.prompt_too_long", "en", length=limit + 1, limit=limit)
    assert (await stored(harness, alice)).prompt == "smiling, red scarf"
    await alice.say("/prompt clear", says("prompt.cleared"))
    assert (await stored(harness, alice)).prompt == ""


async def test_in_a_group_only_the_asker_can_use_the_settings_screen(harness: Harness) -> None:
    alice, bob = harness.person(1001, "Alice"), harness.person(1002, "Bob")
    group = harness.fake.group(-100900, "Friends", members=[alice.user, bob.user])
    request = harness.fake.send_text(alice.user, group, "/settings")
    screen = await harness.fake.wait_for_message(group, after=request.message_id)
    query = harness.fake.click(bob.user, screen, "set:hyper:on")
    answer = await harness.fake.wait_for(lambda: harness.fake.callback_answer(query), 10)
    assert answer["text"] == t("callback.not_yours", "en") and answer["show_alert"] is True
    assert (await stored(harness, bob)).hyper is False and (await stored(harness, alice)).hyper is False
    query = harness.fake.click(alice.user, screen, "set:hyper:on")
    await harness.fake.wait_for(lambda: harness.fake.callback_answer(query), 10)
    assert (await stored(harness, alice)).hyper is True


async def test_the_chosen_size_shapes_the_next_portrait(harness: Harness, alice: Person) -> None:
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    screen = await alice.say("/settings")
    await alice.tap(screen, "menu:size")
    await alice.tap(screen, "set:size:landscape")
    portrait = await alice.say("/anime", is_photo)
    assert portrait.photo_dimensions == SIZES["landscape"]


async def results_of_one_portrait(harness: Harness, alice: Person) -> tuple[FakeMessage, list[FakeMessage]]:
    """/anime on a default (1000x1000) portrait: the photo and every document the bot sent after asking."""
    request = harness.fake.send_text(alice.user, alice.chat, "/anime")
    photo = await alice.reply_after(request, is_photo)
    done = await harness.until_state(alice, TaskState.DONE)  # the document, if any, goes out before this
    await harness.settle()
    documents = [m for m in alice.sent() if m.message_id > request.message_id and m.document is not None]
    assert done.result_file_id is not None and photo.photo_dimensions == (1000, 1000)
    return photo, documents


async def test_full_size_file_always_adds_the_untouched_document(harness: Harness, alice: Person) -> None:
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    screen = await alice.say("/settings")
    assert "Full-size file: only when needed" in labels(screen)
    answer = await alice.tap(screen, "set:full:always")
    assert answer["text"] == t("settings.saved", "en") and "Full-size file: always" in labels(screen)
    assert (await stored(harness, alice)).full_size_file is True
    photo, documents = await results_of_one_portrait(harness, alice)
    assert len(documents) == 1
    document = documents[0]
    assert document.reply_to is not None and document.reply_to.message_id == photo.message_id
    assert document.body == t("result.document_caption", "en", width=1000, height=1000)
    assert document.document is not None
    with Image.open(BytesIO(harness.fake.file_bytes(document.document.file_id))) as full:
        assert full.size == (1000, 1000)


async def test_full_size_file_only_when_needed_is_the_default_and_sends_just_the_photo(
    harness: Harness, alice: Person
) -> None:
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    screen = await alice.say("/settings")
    await alice.tap(screen, "set:full:always")
    await alice.tap(screen, "set:full:auto")
    assert "Full-size file: only when needed" in labels(screen)
    assert (await stored(harness, alice)).full_size_file is False
    _, documents = await results_of_one_portrait(harness, alice)
    assert documents == []
