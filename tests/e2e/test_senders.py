"""Posts made on behalf of a chat in a group: an anonymous admin (as the group), a member posting as a
channel, a linked channel's automatic forward. None of them is a person with a quota: they get a polite
"post as yourself" (or silence for the automatic forward), never a task, an apology or an admin alert."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram.constants import ChatID

from bot.replies import t
from fake_telegram import FakeChat, FakeMessage, FakeUser
from tests.e2e.images import draw_selfie
from tests.e2e.test_admin_harness import WAIT, Harness, running_bot

GROUP, CHANNEL, ADMIN_CHAT = -100600, -100601, -100602
ADA, MAX = 2101, 2102


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_bot(tmp_path, admin_chat_id=ADMIN_CHAT) as harness:
        harness.fake.group(ADMIN_CHAT, "Bot admins")
        yield harness


def club(h: Harness) -> tuple[FakeChat, FakeChat, FakeUser, FakeUser]:
    ada, member = h.fake.add_user(ADA, "Ada", "ada"), h.fake.add_user(MAX, "Max", "max")
    group = h.fake.group(GROUP, "Club", type="supergroup", admins=[ada], members=[member])
    return group, h.fake.channel(CHANNEL, "Max's channel"), ada, member


async def answer(h: Harness, group: FakeChat, sent: FakeMessage) -> FakeMessage:
    return await h.fake.wait_for_message(group, after=sent.message_id, timeout=WAIT)


async def nothing_charged(h: Harness) -> None:
    for user_id in (ADA, MAX, ChatID.ANONYMOUS_ADMIN, ChatID.FAKE_CHANNEL, ChatID.SERVICE_CHAT):
        assert await h.store.tasks.recent_for_user(user_id) == []
    for user_id in (ChatID.ANONYMOUS_ADMIN, ChatID.FAKE_CHANNEL, ChatID.SERVICE_CHAT):
        assert await h.store.users.get(user_id) is None
    assert h.fake.sent_messages(ADMIN_CHAT) == []


async def test_an_anonymous_admin_is_asked_to_post_as_themselves(bot: Harness) -> None:
    group, _, ada, _ = club(bot)
    expected = t("sender.anonymous_admin", "en")
    for sent in (
        bot.fake.send_text(ada, group, "/anime", as_chat=group),
        bot.fake.send_text(ada, group, "/anime@PortraitTestBot cute", as_chat=group),
        bot.fake.send_photo(ada, group, draw_selfie(), caption="/anime", as_chat=group),
        bot.fake.send_text(ada, group, "/grant @max 5", as_chat=group),
    ):
        assert (await answer(bot, group, sent)).body == expected
    await nothing_charged(bot)


async def test_a_member_posting_as_a_channel_is_asked_to_post_as_themselves(bot: Harness) -> None:
    group, channel, _, member = club(bot)
    for sent in (
        bot.fake.send_text(member, group, "/anime", as_chat=channel),
        bot.fake.send_photo(member, group, draw_selfie(), caption="/style", as_chat=channel),
    ):
        assert (await answer(bot, group, sent)).body == t("sender.channel", "en")
    await nothing_charged(bot)


async def test_a_linked_channels_automatic_forward_is_ignored(bot: Harness) -> None:
    group, channel, _, member = club(bot)
    forwarded = bot.fake.auto_forward(channel, group, "/anime new post from the channel")
    probe = bot.fake.send_text(member, group, "/help")
    reply = await answer(bot, group, forwarded)
    assert reply.reply_to is not None and reply.reply_to.message_id == probe.message_id
    await nothing_charged(bot)


async def test_an_anonymous_admin_still_controls_the_group(bot: Harness) -> None:
    group, _, ada, _ = club(bot)
    sent = bot.fake.send_text(ada, group, "/group off", as_chat=group)
    assert "off" in (await answer(bot, group, sent)).body
    record = await bot.store.chats.get(GROUP)
    assert record is not None and record.enabled is False
