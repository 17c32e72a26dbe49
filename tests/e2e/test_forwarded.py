"""Forwarded messages are someone else's words: a command in them never runs, for anyone.

The admin guide tells admins to forward a user's message and reply to it with a command; before the fix a
forwarded message starting with `/grant` or `/ban` ran as the forwarder's (the admin's) own command. Picking
the target of an admin command by replying to a forwarded message keeps working.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.replies import t
from fake_telegram import FakeMessage
from tests.e2e.images import draw_selfie
from tests.e2e.test_admin_chat import ANN, BOB, people
from tests.e2e.test_admin_harness import OWNER_ID, WAIT, Harness, running_bot


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_bot(tmp_path) as harness:
        yield harness


def refused(admin: bool) -> str:
    return t("forwarded.command_admin" if admin else "forwarded.command", "en")


@pytest.mark.parametrize("text", ["/grant @ann 5", "/grant 1001 5", "/setdaily @ann 50", "/unban @bob"])
async def test_a_forwarded_grant_never_runs_as_the_admins_command(bot: Harness, text: str) -> None:
    owner, ann, _, _ = await people(bot)
    chat = bot.fake.private_chat(owner)
    await bot.store.users.ban(BOB, actor=OWNER_ID, reason="spam")
    audited = await bot.store.admin.audit_log()
    sent = bot.fake.send_text(owner, chat, text, forward_from=ann)
    reply = await bot.fake.wait_for_message(chat, after=sent.message_id, timeout=WAIT)
    assert reply.body == refused(admin=True)
    balance = await bot.store.quotas.balance(ANN)
    assert (balance.credits, balance.daily_allowance) == (0, 3)
    assert (await bot.store.users.get(BOB)).banned is True  # type: ignore[union-attr]
    assert await bot.store.admin.audit_log() == audited


async def test_a_forwarded_ban_bans_nobody(bot: Harness) -> None:
    owner, ann, _, _ = await people(bot)
    chat = bot.fake.private_chat(owner)
    sent = bot.fake.send_text(owner, chat, "/ban @bob spam", forward_from=ann)
    reply = await bot.fake.wait_for_message(chat, after=sent.message_id, timeout=WAIT)
    assert reply.body == refused(admin=True)
    assert (await bot.store.users.get(BOB)).banned is False  # type: ignore[union-attr]


async def test_a_forwarded_anime_starts_nothing(bot: Harness) -> None:
    _, ann, bob, _ = await people(bot)
    chat = bot.fake.private_chat(ann)
    await bot.ask(ann, chat, "/start")
    photo = bot.fake.send_photo(ann, chat, draw_selfie())
    await bot.fake.wait_for_message(chat, after=photo.message_id, timeout=WAIT)
    for forwarded in (
        bot.fake.send_text(ann, chat, "/anime smiling", forward_from=bob),
        bot.fake.send_text(ann, chat, "/anime@PortraitTestBot", forward_from="Hidden Hal"),
        bot.fake.send_photo(ann, chat, draw_selfie(300), caption="/anime", forward_from=bob),
    ):
        reply = await bot.fake.wait_for_message(chat, after=forwarded.message_id, timeout=WAIT)
        assert reply.body == refused(admin=False)
    assert await bot.store.tasks.recent_for_user(ANN) == []
    assert (await bot.store.quotas.balance(ANN)).free_left == 3


async def test_replying_to_a_forwarded_message_still_names_its_sender(bot: Harness) -> None:
    owner, ann, _, _ = await people(bot)
    chat = bot.fake.private_chat(owner)
    for text in ("pls more credits", "/quota"):
        forwarded = bot.fake.send_text(owner, chat, text, forward_from=ann)
        await bot.fake.wait_for_message(chat, after=forwarded.message_id, timeout=WAIT)
        reply: FakeMessage = await bot.ask(owner, chat, "/grant 2 support", reply_to=forwarded)
        assert reply.body.startswith("@ann (1001): 3 of 3 free left today")
    assert (await bot.store.quotas.balance(ANN)).credits == 4
