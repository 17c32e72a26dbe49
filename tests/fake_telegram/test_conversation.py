"""A real PTB Application talks to the fake over HTTP: user actions arrive, the bot's calls are recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from telegram import BotCommand, BotCommandScopeChat, InputMediaPhoto
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, RetryAfter

from fake_telegram import FakeTelegram, make_bot, serve
from fake_telegram.media import image_size
from tests.fake_telegram.conftest import EchoBot, image_bytes


async def test_command_reply_keyboard_click_and_edit(fake: FakeTelegram, echo: EchoBot) -> None:
    alice = fake.add_user(1001, "Alice", "alice")
    chat = fake.private_chat(alice)

    fake.send_text(alice, chat, "/start hello world")
    hello = await fake.wait_for_message(chat, "Hello")
    assert echo.commands == [("/start hello world", ["hello", "world"])]
    assert hello.text == "Hello there"  # HTML parsed away, kept as an entity
    assert hello.entities == [{"type": "bold", "offset": 6, "length": 5}]
    assert hello.buttons == [[("Again", "again:1")]]

    query_id = fake.click(alice, hello, "again:1")
    edited = await fake.wait_for_message(chat, "You pressed again:1")
    assert edited.message_id == hello.message_id
    assert edited.history == ["Hello there"]
    assert edited.buttons == []  # an edit without reply_markup drops the keyboard, as on Telegram
    assert fake.callback_answer(query_id) == {"text": "Working on it", "show_alert": False, "url": None}
    assert fake.transcript(chat.id).splitlines() == [
        "[private Alice] #1 Alice: /start hello world",
        "[private Alice] #2 bot: Hello there",
        "    [Again]",
        "[private Alice] Alice pressed [Again] on #2",
        "[private Alice] bot (toast to Alice): Working on it",
        "[private Alice] #2 bot (edited): You pressed again:1",
    ]
    methods = [call.method for call in fake.calls if call.method != "getUpdates"]
    assert methods == ["getMe", "deleteWebhook", "sendMessage", "answerCallbackQuery", "editMessageText"]


async def test_photo_is_downloaded_and_sent_back_as_photo_and_document(
    fake: FakeTelegram, echo: EchoBot
) -> None:
    bob = fake.add_user(1002, "Bob")
    chat = fake.private_chat(bob)
    original = image_bytes(1000, 750)

    sent = fake.send_photo(bob, chat, original)
    document = await fake.wait_for_message(chat, lambda m: m.document is not None)

    assert [(size.width, size.height) for size in sent.photo] == [
        (90, 68),
        (320, 240),
        (800, 600),
        (1000, 750),
    ]
    assert echo.downloads == [original]  # photo[-1] of a photo this small is the original
    photo = fake.sent_messages(chat.id)[0]
    assert photo.caption == "your photo" and photo.photo_dimensions == (1000, 750)
    assert fake.file_bytes(photo.photo[-1].file_id) == original
    assert document.document is not None and document.document.file_name == "full.png"
    assert document.document.mime_type == "image/png"
    assert fake.calls_to("sendDocument")[0].files == {"document": original}
    assert "#2 bot: [photo 1000x750] your photo" in fake.transcript()
    assert "#3 bot: [document full.png image/png 1000x750" in fake.transcript()


async def test_big_photo_is_recompressed_to_2560(fake: FakeTelegram, echo: EchoBot) -> None:
    carol = fake.add_user(1003, "Carol")
    chat = fake.private_chat(carol)

    sent = fake.send_photo(carol, chat, image_bytes(2800, 1400, "JPEG"))
    await fake.wait_for_message(chat, lambda m: m.document is not None)

    assert sent.photo_dimensions == (2560, 1280)
    assert len(echo.downloads) == 1  # the bot got the recompressed largest size
    assert image_size(echo.downloads[0]) == (2560, 1280)


async def test_blocked_user_gives_forbidden(fake: FakeTelegram, echo: EchoBot) -> None:
    dave = fake.add_user(1004, "Dave")
    chat = fake.private_chat(dave)
    fake.block(chat.id)

    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await echo.app.bot.send_message(chat.id, "anyone there?")
    with pytest.raises(Forbidden):
        await echo.app.bot.send_chat_action(chat.id, "typing")

    assert [call.status for call in fake.calls_to("sendMessage")] == [403]
    assert fake.sent_messages(chat.id) == []
    assert "bot !! sendMessage: 403 Forbidden: bot was blocked by the user" in fake.transcript()


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_rate_limit_gives_retry_after_for_the_next_calls_only(
    fake: FakeTelegram, echo: EchoBot
) -> None:
    erin = fake.add_user(1005, "Erin")
    chat = fake.private_chat(erin)
    fake.rate_limit("sendMessage", times=2, retry_after=7)

    for _ in range(2):
        with pytest.raises(RetryAfter) as caught:
            await echo.app.bot.send_message(chat.id, "hi")
        retry = caught.value.retry_after
        assert (retry.total_seconds() if isinstance(retry, timedelta) else retry) == 7
    await echo.app.bot.send_message(chat.id, "hi")

    assert [call.status for call in fake.calls_to("sendMessage")] == [429, 429, 200]
    assert [m.text for m in fake.sent_messages(chat.id)] == ["hi"]


async def test_message_not_modified_and_missing_message(fake: FakeTelegram, echo: EchoBot) -> None:
    frank = fake.add_user(1006, "Frank")
    chat = fake.private_chat(frank)
    message = await echo.app.bot.send_message(chat.id, "Queued")

    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await echo.app.bot.edit_message_text("Queued", chat_id=chat.id, message_id=message.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await echo.app.bot.edit_message_text("Done", chat_id=chat.id, message_id=999)
    await echo.app.bot.edit_message_text("Done", chat_id=chat.id, message_id=message.message_id)
    assert await echo.app.bot.delete_message(chat.id, message.message_id) is True
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await echo.app.bot.delete_message(chat.id, message.message_id)

    assert fake.sent_messages(chat.id) == []
    assert fake.sent_messages(chat.id, include_deleted=True)[0].history == ["Queued"]


async def test_wrong_token_is_invalid_token(fake: FakeTelegram) -> None:
    async with serve(fake) as url:
        bot = make_bot("42:not-the-token", url)
        with pytest.raises(InvalidToken):
            await bot.initialize()
    assert [(call.method, call.status, call.error) for call in fake.calls] == [("getMe", 401, "Unauthorized")]


async def test_commands_are_recorded_per_scope(fake: FakeTelegram, echo: EchoBot) -> None:
    bot = echo.app.bot
    fake.private_chat(fake.add_user(1001, "Owner"))  # a chat scope needs a chat Telegram knows
    await bot.set_my_commands([BotCommand("start", "Start"), BotCommand("anime", "Make a portrait")])
    await bot.set_my_commands([BotCommand("stats", "Stats")], scope=BotCommandScopeChat(1001))

    assert [c.command for c in await bot.get_my_commands()] == ["start", "anime"]
    assert [c.command for c in await bot.get_my_commands(scope=BotCommandScopeChat(1001))] == ["stats"]
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])


async def test_group_privacy_mode_and_chat_members(fake: FakeTelegram, echo: EchoBot) -> None:
    owner, admin, member = fake.add_user(1, "Olga"), fake.add_user(2, "Adam"), fake.add_user(3, "Mia")
    group = fake.group(-100, "Friends", admins=[admin], creator=owner, members=[member])

    chatter = fake.send_text(member, group, "just chatting")
    other_bot = fake.send_text(member, group, "/start@SomeOtherBot")
    fake.send_text(member, group, "/start@EchoTestBot")
    await fake.wait_for_message(group, "Hello")

    assert not chatter.delivered and not other_bot.delivered
    assert echo.commands == [("/start@EchoTestBot", [])]
    statuses = [(await echo.app.bot.get_chat_member(group.id, u.id)).status for u in (owner, admin, member)]
    assert statuses == ["creator", "administrator", "member"]
    assert [m.user.id for m in await echo.app.bot.get_chat_administrators(group.id)] == [1, 2]
    assert (await echo.app.bot.get_chat(group.id)).title == "Friends"


async def test_bot_added_removed_and_group_migrated(fake: FakeTelegram, echo: EchoBot) -> None:
    owner = fake.add_user(1, "Olga")
    group = fake.group(-200, "Club", creator=owner, bot_member=False)

    fake.add_bot_to_group(owner, group)
    await fake.wait_for(lambda: echo.member_updates)
    new = fake.migrate_group(-200, -100200)
    await fake.wait_for(lambda: echo.migrations)
    with pytest.raises(ChatMigrated) as caught:
        await echo.app.bot.send_message(-200, "old id")
    assert caught.value.new_chat_id == -100200
    await echo.app.bot.send_message(new.id, "new id works")
    fake.remove_bot_from_group(owner, new)
    await fake.wait_for(lambda: len(echo.member_updates) == 2)

    assert echo.member_updates == [(-200, "member"), (-100200, "kicked")]
    assert echo.migrations == [(-200, -100200)]
    with pytest.raises(Forbidden, match="kicked from the supergroup chat"):
        await echo.app.bot.send_message(new.id, "still here?")


async def test_albums_both_ways(fake: FakeTelegram, echo: EchoBot) -> None:
    gina = fake.add_user(1007, "Gina")
    chat = fake.private_chat(gina)
    face, style = image_bytes(600, 800), image_bytes(500, 500, color=(10, 200, 10))

    parts = [fake.send_photo(gina, chat, data, media_group_id="album-1") for data in (face, style)]
    await fake.wait_for(lambda: len(echo.downloads) == 2)
    album = await echo.app.bot.send_media_group(chat.id, [InputMediaPhoto(face), InputMediaPhoto(style, "b")])

    assert {p.media_group_id for p in parts} == {"album-1"}
    assert sorted(echo.downloads) == sorted([face, style])
    assert [m.photo[-1].width for m in album] == [600, 500] and album[1].caption == "b"
    assert album[0].media_group_id == album[1].media_group_id is not None
    assert "[photo 500x500] [album " in fake.transcript(chat.id)


async def test_unconfirmed_updates_survive_a_restart_of_the_bot(fake: FakeTelegram) -> None:
    hank = fake.add_user(1008, "Hank")
    fake.send_text(hank, fake.private_chat(hank), "/start")

    for _ in range(2):  # a bot that crashes before confirming sees the update again after restarting
        async with serve(fake) as url, make_bot(fake.token, url) as bot:
            updates = await bot.get_updates(timeout=0)
        assert [u.message.text for u in updates if u.message] == ["/start"]

    async with serve(fake) as url, make_bot(fake.token, url) as bot:
        assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == ()
    assert fake.updates == []
