"""The bot in group chats, through the fake Bot API: what it listens to, settings, membership, migration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from telegram import Message

from bot.handlers.groups import addressed_to_bot, replied_photo
from bot.jobs.params import uses_style_image
from bot.replies import t
from fake_telegram import FakeChat, FakeMessage, FakeUser
from storage import Chat, TaskState
from tests.e2e.images import draw_selfie
from tests.e2e.test_admin_harness import WAIT, Harness, running_bot

T = TypeVar("T")
GROUP = -100500
ADMIN, MEMBER, OTHER = 2001, 2002, 2003
SETTINGS_PROBE = "/groupsettings"


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_bot(tmp_path) as harness:
        yield harness


async def eventually(read: Callable[[], Awaitable[T]], ok: Callable[[T], bool]) -> T:
    """Re-read until `ok`: the bot handles updates on its own schedule. Fails after about WAIT seconds."""
    step = 0.02
    for _ in range(int(WAIT / step)):
        value = await read()
        if ok(value):
            return value
        await asyncio.sleep(step)
    raise AssertionError(f"still not there after {WAIT} s: {value!r}")


def friends(h: Harness, **group_options: object) -> tuple[FakeChat, FakeUser, FakeUser]:
    admin = h.fake.add_user(ADMIN, "Ada", "ada")
    member = h.fake.add_user(MEMBER, "Max", "max")
    group = h.fake.group(
        GROUP, "Friends", admins=[admin], members=[member], **group_options  # type: ignore[arg-type]
    )
    return group, admin, member


def has_photo(message: FakeMessage) -> bool:
    return bool(message.photo)


def settings_text(enabled: str = "on", cap: object = "none", private: str = "off") -> str:
    return t("group.settings", "en", enabled=enabled, cap=cap, private=private)


async def chat(h: Harness, chat_id: int) -> Chat | None:
    return await h.store.chats.get(chat_id)


async def test_added_and_removed_is_stored_and_greeted_once(bot: Harness) -> None:
    group, admin, _ = friends(bot, bot_member=False)
    bot.fake.add_bot_to_group(admin, group)
    welcome = await bot.fake.wait_for_message(group, timeout=WAIT)
    assert welcome.body == t("group.welcome", "en")
    stored = await eventually(lambda: chat(bot, GROUP), lambda c: c is not None and c.active)
    assert stored is not None and (stored.title, stored.type) == ("Friends", "group")

    bot.fake.remove_bot_from_group(admin, group)
    await eventually(lambda: chat(bot, GROUP), lambda c: c is not None and not c.active)
    bot.fake.add_bot_to_group(admin, group)
    await eventually(lambda: chat(bot, GROUP), lambda c: c is not None and c.active)
    greetings = [m for m in bot.fake.sent_messages(GROUP) if m.body == t("group.welcome", "en")]
    assert len(greetings) == 2  # once per time it was added, never for other membership changes


async def test_admins_change_settings_others_may_only_look(bot: Harness) -> None:
    group, admin, member = friends(bot)
    assert (await bot.ask(member, group, "/group")).body == settings_text()
    assert (await bot.ask(admin, group, "/group cap 2")).body == settings_text(cap=2)
    assert (await bot.ask(admin, group, "/group private on")).body == settings_text(cap=2, private="on")
    assert (await bot.ask(member, group, "/group cap 50")).body == t("group.not_admin", "en")
    assert (await bot.ask(member, group, "/group off")).body == t("group.not_admin", "en")
    for malformed in ("/group cap -1", "/group cap lots", "/group cap 0", "/group maybe", "/group private"):
        assert (await bot.ask(admin, group, malformed)).body == t("group.usage", "en")
    assert (await bot.ask(admin, group, "/group cap off")).body == settings_text(private="on")
    stored = await chat(bot, GROUP)
    assert stored is not None and (stored.daily_cap, stored.results_private) == (None, True)
    audit = [(e.actor, e.action, e.target) for e in await bot.store.admin.audit_log()]
    assert audit == [(ADMIN, "chat_settings", str(GROUP))] * 3


async def test_group_settings_in_a_private_chat_point_to_groups(bot: Harness) -> None:
    user = bot.fake.add_user(OTHER, "Pia", "pia")
    reply = await bot.ask(user, bot.fake.private_chat(user), "/group off")
    assert reply.body == t("group.only_in_groups", "en")


async def test_a_switched_off_group_hears_nothing_but_group_settings(bot: Harness) -> None:
    group, admin, member = friends(bot)
    assert (await bot.ask(member, group, "/help")).body.startswith("What I can do")
    assert (await bot.ask(admin, group, "/group off")).body == settings_text(enabled="off")
    await bot.ignored(member, group, "/help", probe=SETTINGS_PROBE)
    await bot.ignored(member, group, "/anime", probe=SETTINGS_PROBE)
    await bot.ignored(admin, group, "/start", probe=SETTINGS_PROBE)
    assert (await bot.ask(member, group, "/group on")).body == t("group.not_admin", "en")
    assert (await bot.ask(admin, group, "/group on")).body == settings_text()
    assert (await bot.ask(member, group, "/help")).body.startswith("What I can do")


async def test_only_what_is_addressed_to_the_bot_counts_without_privacy_mode(tmp_path: Path) -> None:
    async with running_bot(tmp_path, privacy_mode=False) as h:
        group, _, member = friends(h)
        username = h.fake.bot_user.username
        await h.ignored(member, group, "hello everyone", probe=SETTINGS_PROBE)
        await h.ignored(member, group, "/help@SomeOtherBot", probe=SETTINGS_PROBE)
        h.fake.send_photo(member, group, draw_selfie(), caption="/anime@SomeOtherBot")
        h.fake.send_photo(member, group, draw_selfie())
        await h.ask(member, group, SETTINGS_PROBE)
        assert (await h.store.users.get_settings(MEMBER)).selfie_file_id is None
        assert await h.store.tasks.recent_for_user(MEMBER) == []
        assert (await h.ask(member, group, f"/help@{username}")).body.startswith("What I can do")
        assert (await h.ask(member, group, "/help")).body.startswith("What I can do")


async def test_a_caption_command_in_a_group_generates_and_replies_to_the_requester(bot: Harness) -> None:
    group, _, member = friends(bot)
    request = bot.fake.send_photo(member, group, draw_selfie(), caption="/anime smiling")
    result = await bot.fake.wait_for_message(group, has_photo, after=request.message_id, timeout=WAIT)
    assert result.reply_to is not None and result.reply_to.message_id == request.message_id
    (task,) = await eventually(
        lambda: bot.store.tasks.recent_for_user(MEMBER), lambda tasks: tasks[0].state == TaskState.DONE
    )
    assert task.chat_id == GROUP and task.request_message_id == request.message_id


async def test_migration_to_a_supergroup_keeps_the_settings(bot: Harness) -> None:
    group, admin, member = friends(bot)
    await bot.ask(admin, group, "/group cap 2")
    await bot.ask(admin, group, "/group private on")
    new_id = -1001000500
    supergroup = bot.fake.migrate_group(GROUP, new_id, admin)
    moved = await eventually(lambda: chat(bot, new_id), lambda c: c is not None)
    assert moved is not None
    assert (moved.type, moved.daily_cap, moved.results_private) == ("supergroup", 2, True)
    assert await chat(bot, GROUP) is None
    assert (await bot.ask(member, supergroup, "/group")).body == settings_text(cap=2, private="on")


async def test_chat_admin_answers_are_cached_for_a_minute(bot: Harness) -> None:
    group, admin, _ = friends(bot)
    assert (await bot.ask(admin, group, "/group cap 3")).body == settings_text(cap=3)
    assert (await bot.ask(admin, group, "/group cap 4")).body == settings_text(cap=4)
    assert len(bot.fake.calls_to("getChatMember", chat_id=GROUP)) == 1
    bot.fake.set_admins(group, [])  # demoted: the cached answer still holds for the rest of the minute
    bot.clock.advance(59)
    assert (await bot.ask(admin, group, "/group cap 5")).body == settings_text(cap=5)
    bot.clock.advance(2)
    assert (await bot.ask(admin, group, "/group cap 6")).body == t("group.not_admin", "en")
    assert len(bot.fake.calls_to("getChatMember", chat_id=GROUP)) == 2
    stored = await chat(bot, GROUP)
    assert stored is not None and stored.daily_cap == 5


async def test_anime_as_a_reply_to_a_photo_uses_that_photo(bot: Harness) -> None:
    group, admin, member = friends(bot)
    photo = bot.fake.send_photo(admin, group, draw_selfie())  # not delivered (privacy mode), but repliable
    request = bot.fake.send_text(member, group, "/anime", reply_to=photo)
    result = await bot.fake.wait_for_message(group, has_photo, after=request.message_id, timeout=WAIT)
    assert result.reply_to is not None and result.reply_to.message_id == request.message_id
    (task,) = await bot.store.tasks.recent_for_user(MEMBER)
    assert task.face_file_id == photo.photo[-1].file_id


async def test_the_group_daily_cap_stops_generations_in_that_group(bot: Harness) -> None:
    group, admin, member = friends(bot)
    await bot.ask(admin, group, "/group cap 1")
    first = bot.fake.send_photo(member, group, draw_selfie(), caption="/anime")
    await bot.fake.wait_for_message(group, has_photo, after=first.message_id, timeout=WAIT)
    second = bot.fake.send_photo(admin, group, draw_selfie(), caption="/anime")
    refusal = await bot.fake.wait_for_message(group, after=second.message_id, timeout=WAIT)
    assert "cap" in refusal.body.lower()
    assert await bot.store.tasks.recent_for_user(ADMIN) == []


def _message(**fields: object) -> Message:
    """A PTB Message as Telegram would send it to the bot (for the gate's pure checks)."""
    data: dict[str, object] = {"message_id": 7, "date": 0, "chat": {"id": GROUP, "type": "group"}}
    data.update(fields)
    message = Message.de_json(data, None)
    assert message is not None
    return message


def _command(text: str) -> dict[str, object]:
    word = text.split()[0]
    return {"text": text, "entities": [{"type": "bot_command", "offset": 0, "length": len(word)}]}


BOT_ID, BOT_NAME = 42, "PortraitTestBot"
BOT_USER = {"id": BOT_ID, "is_bot": True, "first_name": "Portrait"}
HUMAN = {"id": MEMBER, "is_bot": False, "first_name": "Max"}
PHOTO = [{"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90},
         {"file_id": "large", "file_unique_id": "l", "width": 900, "height": 900}]  # fmt: skip


def _reply_to(sender: dict[str, object], **fields: object) -> dict[str, object]:
    return {"message_id": 3, "date": 0, "chat": {"id": GROUP, "type": "group"}, "from": sender, **fields}


CAPTION_ANIME = {"caption": "/anime", "caption_entities": [{"type": "bot_command", "offset": 0, "length": 6}]}


@pytest.mark.parametrize(
    ("fields", "addressed"),
    [
        (_command("/anime"), True),
        (_command("/anime@PortraitTestBot cute"), True),
        (_command("/anime@portraittestbot"), True),
        (_command("/anime@OtherBot"), False),
        ({"text": "hi /anime"}, False),
        ({"text": "hello"}, False),
        ({"photo": PHOTO, **CAPTION_ANIME}, True),
        ({"photo": PHOTO, "caption": "nice"}, False),
        ({"text": "thanks!", "reply_to_message": _reply_to(BOT_USER, text="done")}, True),
        ({"text": "lol", "reply_to_message": _reply_to(HUMAN, text="hey")}, False),
    ],
)
def test_what_counts_as_addressed_to_the_bot(fields: dict[str, object], addressed: bool) -> None:
    assert addressed_to_bot(_message(**fields), BOT_ID, BOT_NAME) is addressed


def test_replied_photo_takes_the_largest_size_or_an_image_file() -> None:
    anime = _command("/anime")
    assert replied_photo(_message(**anime, reply_to_message=_reply_to(HUMAN, photo=PHOTO))) == ("large", "l")
    image = {"file_id": "doc", "file_unique_id": "d", "mime_type": "image/png"}
    assert replied_photo(_message(**anime, reply_to_message=_reply_to(HUMAN, document=image))) == ("doc", "d")
    pdf = {"file_id": "pdf", "file_unique_id": "p", "mime_type": "application/pdf"}
    assert replied_photo(_message(**anime, reply_to_message=_reply_to(HUMAN, document=pdf))) is None
    assert replied_photo(_message(**anime, reply_to_message=_reply_to(HUMAN, text="hi"))) is None
    assert replied_photo(_message(**anime)) is None


async def test_private_results_go_to_the_requesters_private_chat(bot: Harness) -> None:
    group, admin, member = friends(bot)
    await bot.ask(member, bot.fake.private_chat(member), "/start")  # private chats need the user to start one
    assert (await bot.ask(admin, group, "/group private on")).body == settings_text(private="on")
    bot.fake.send_photo(member, group, draw_selfie(), caption="/anime")
    result = await bot.fake.wait_for_message(MEMBER, has_photo, timeout=WAIT)
    assert result.chat.id == MEMBER
    assert not [m for m in bot.fake.sent_messages(GROUP) if m.photo]


async def test_buttons_in_a_switched_off_group_answer_politely_and_generate_nothing(bot: Harness) -> None:
    group, admin, member = friends(bot)
    request = bot.fake.send_photo(member, group, draw_selfie(), caption="/anime")
    result = await bot.fake.wait_for_message(group, has_photo, after=request.message_id, timeout=WAIT)
    (task,) = await eventually(
        lambda: bot.store.tasks.recent_for_user(MEMBER), lambda tasks: tasks[0].state == TaskState.DONE
    )
    free_left = (await bot.store.quotas.balance(MEMBER)).free_left
    assert (await bot.ask(admin, group, "/group off")).body == settings_text(enabled="off")
    for data in (f"again:{task.id}", f"seed:{task.id}"):
        query = bot.fake.click(member, result, data)
        answer = await bot.fake.wait_for(lambda q=query: bot.fake.callback_answer(q), WAIT)  # type: ignore[misc]
        assert answer["text"] == t("group.off_button", "en")
    assert [mine.id for mine in await bot.store.tasks.recent_for_user(MEMBER)] == [task.id]
    assert (await bot.store.quotas.balance(MEMBER)).free_left == free_left
    assert not [m for m in bot.fake.sent_messages(GROUP) if m.message_id > result.message_id and m.photo]


async def test_a_migration_by_a_banned_user_still_moves_the_settings(bot: Harness) -> None:
    group, admin, member = friends(bot)
    await bot.ask(admin, group, "/group cap 2")
    await bot.store.users.ban(ADMIN, actor=1, reason="spam")
    assert (await bot.ask(admin, group, "/group")).body == t("banned", "en")
    new_id = -1001000501
    supergroup = bot.fake.migrate_group(GROUP, new_id, admin)
    moved = await eventually(lambda: chat(bot, new_id), lambda c: c is not None)
    assert moved is not None and (moved.type, moved.daily_cap) == ("supergroup", 2)
    assert await chat(bot, GROUP) is None
    assert (await bot.ask(member, supergroup, "/group")).body == settings_text(cap=2)


async def test_a_banned_user_adding_the_bot_still_registers_the_group(bot: Harness) -> None:
    group, admin, _ = friends(bot, bot_member=False)
    await bot.store.users.upsert_seen(ADMIN, username="ada", first_name="Ada", language_code="en")
    await bot.store.users.ban(ADMIN, actor=1, reason="spam")
    bot.fake.add_bot_to_group(admin, group)
    stored = await eventually(lambda: chat(bot, GROUP), lambda c: c is not None and c.active)
    assert stored is not None and stored.title == "Friends"


async def test_style_and_selfie_by_reply_in_a_group_instead_of_an_album(bot: Harness) -> None:
    """Privacy mode hides an album's uncaptioned parts, so in groups: /style replying to the style image,
    then /anime replying to the selfie (docs/GROUPS.md)."""
    group, admin, member = friends(bot)
    style = bot.fake.send_photo(admin, group, draw_selfie())  # neither photo reaches the bot on its own
    selfie = bot.fake.send_photo(member, group, draw_selfie())
    assert not style.delivered and not selfie.delivered
    saved = await bot.ask(member, group, "/style", reply_to=style)
    assert saved.body == t("style.saved", "en")
    request = bot.fake.send_text(member, group, "/anime", reply_to=selfie)
    result = await bot.fake.wait_for_message(group, has_photo, after=request.message_id, timeout=WAIT)
    assert result.reply_to is not None and result.reply_to.message_id == request.message_id
    (task,) = await bot.store.tasks.recent_for_user(MEMBER)
    assert (task.face_file_id, task.style_file_id) == (selfie.photo[-1].file_id, style.photo[-1].file_id)
    assert uses_style_image(task.params)
