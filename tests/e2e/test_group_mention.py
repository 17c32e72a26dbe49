"""A result in a group names the requester with a text mention (works without a username), as well as
replying to their request; in a private chat, and when a group sends results privately, it does not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.replies import t
from fake_telegram import FakeMessage
from tests.e2e.images import draw_selfie
from tests.e2e.test_admin_harness import WAIT, Harness, running_bot

GROUP = -100700
NAME = "Max 🎨 <b>&"  # an emoji (two UTF-16 units) and markup characters, shown as they are


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_bot(tmp_path) as harness:
        yield harness


def has_photo(message: FakeMessage) -> bool:
    return bool(message.photo)


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


async def test_a_group_result_mentions_the_requester_by_name(bot: Harness) -> None:
    member, other = bot.fake.add_user(2201, NAME), bot.fake.add_user(2202, "Ora", "ora")
    group = bot.fake.group(GROUP, "Club", members=[member, other])
    await bot.ask(other, group, "/help")  # someone else is known too: the mention must be the requester
    request = bot.fake.send_photo(member, group, draw_selfie(), caption="/anime")
    result = await bot.fake.wait_for_message(group, has_photo, after=request.message_id, timeout=WAIT)
    base = t("result.caption", "en", preset=t("preset.anime", "en"))
    assert result.caption == t("result.caption_for", "en", caption=base, name=NAME)
    (mention,) = result.caption_entities
    assert mention["type"] == "text_mention" and mention["user"]["id"] == member.id
    assert (mention["offset"], mention["length"]) == (utf16(base + ", "), utf16(NAME))
    assert result.reply_to is not None and result.reply_to.message_id == request.message_id


async def test_private_results_carry_no_mention(bot: Harness) -> None:
    alice = bot.fake.add_user(2203, "Alice", "alice")
    chat = bot.fake.private_chat(alice)
    request = bot.fake.send_photo(alice, chat, draw_selfie(), caption="/anime")
    result = await bot.fake.wait_for_message(chat, has_photo, after=request.message_id, timeout=WAIT)
    assert result.caption == t("result.caption", "en", preset=t("preset.anime", "en"))
    assert result.caption_entities == []


async def test_a_group_result_sent_privately_carries_no_mention(bot: Harness) -> None:
    member = bot.fake.add_user(2204, "Mia", "mia")
    group = bot.fake.group(GROUP, "Club", members=[member])
    await bot.ask(member, bot.fake.private_chat(member), "/start")
    await bot.store.chats.upsert(GROUP, type="group", title="Club")
    await bot.store.chats.update_settings(GROUP, results_private=True, actor=member.id)
    bot.fake.send_photo(member, group, draw_selfie(), caption="/anime")
    result = await bot.fake.wait_for_message(member.id, has_photo, timeout=WAIT)
    assert result.caption == t("result.caption", "en", preset=t("preset.anime", "en"))
    assert result.caption_entities == []
