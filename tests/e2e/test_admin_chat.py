"""Bot-admin commands in a private chat, through the fake Bot API: results, refusals and the audit log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram import Message

from bot.admin import render
from bot.admin.args import MAX_AMOUNT, AdminError
from bot.admin.cli import EXIT_OK, run_admin
from bot.handlers.user_ref import replied_user_id, resolve_target
from bot.replies import t
from fake_telegram import FakeUser
from storage import LedgerEntry, Role, Stats, Store, TaskState
from tests.e2e.images import draw_selfie
from tests.e2e.test_admin_harness import OWNER_ID, WAIT, Harness, running_bot
from tests.e2e.test_groups import eventually

ANN, BOB, EVE = 1001, 1002, 1003
ADMIN_COMMANDS = [
    "/grant @ann 5", "/setdaily default 9", "/ban @ann", "/unban @ann", "/stats", "/audit",
    "/admin add @eve",
]  # fmt: skip


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_bot(tmp_path) as harness:
        yield harness


async def meet(h: Harness, user_id: int, name: str, username: str) -> FakeUser:
    """A user who has talked to the bot (so @username resolves)."""
    user = h.fake.add_user(user_id, name, username)
    await h.ask(user, h.fake.private_chat(user), "/start")
    return user


async def people(h: Harness) -> tuple[FakeUser, FakeUser, FakeUser, FakeUser]:
    owner = await meet(h, OWNER_ID, "Olga", "olga")
    ann, bob = await meet(h, ANN, "Ann", "ann"), await meet(h, BOB, "Bob", "bob")
    return owner, ann, bob, await meet(h, EVE, "Eve", "eve")


async def say(h: Harness, user: FakeUser, text: str) -> str:
    return (await h.ask(user, h.fake.private_chat(user), text)).body


async def test_a_stranger_gets_the_unknown_command_reply_and_is_logged(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    *_, eve = await people(bot)
    caplog.set_level(logging.WARNING, logger="bot.handlers.admin")
    for command in ADMIN_COMMANDS:
        reply = await say(bot, eve, command)
        name = command.split()[0]
        unknown = await say(bot, eve, "/frobnicate " + command.partition(" ")[2])
        assert reply == unknown.replace("/frobnicate", name) == t("unknown.command", "en", command=name)
        logged = [r.getMessage() for r in caplog.records]
        assert any(f"refused admin command '{command}' from user {EVE}" in line for line in logged)
    assert await bot.store.admin.audit_log() == []
    assert (await bot.store.quotas.balance(ANN)).credits == 0
    assert (await bot.store.users.get(ANN)).banned is False  # type: ignore[union-attr]
    assert (await bot.store.users.get(EVE)).role == Role.USER  # type: ignore[union-attr]


async def test_grant_answers_with_the_balance_and_is_audited(bot: Harness) -> None:
    owner, ann, _, _ = await people(bot)
    reply = await say(bot, owner, "/grant @ann 5 contest prize")
    assert reply == t("admin.balance", "en", user="@ann (1001)", free_left=3, daily=3, credits="5 credits",
                      resets=reply.split("resets ")[1].rstrip("."))  # fmt: skip
    assert (await bot.store.quotas.balance(ANN)).credits == 5
    assert "Credits: 5" in await say(bot, ann, "/quota")
    entry = (await bot.store.admin.audit_log())[0]
    assert (entry.actor, entry.action, entry.target) == (OWNER_ID, "grant", str(ANN))
    assert "contest prize" in entry.details
    assert "1001" in await say(bot, owner, f"/grant {ANN} -2")
    assert (await bot.store.quotas.balance(ANN)).credits == 3


REFUSALS: list[tuple[str, str, dict[str, object]]] = [
    ("/grant @nobody 5", "admin.error.unknown_user", {"user": "@nobody"}),
    ("/grant 555 5", "admin.error.unknown_user", {"user": 555}),
    ("/grant @ann 0", "admin.error.zero", {}),
    ("/grant @ann -4", "admin.error.below_zero", {"credits": 0, "amount": -4}),
    ("/grant @ann 1000001", "admin.error.too_big", {"value": "1000001", "max": MAX_AMOUNT}),
    ("/grant @ann 10000000000000000000000", "admin.error.not_a_number", {"value": "1" + "0" * 19}),
    ("/grant @ann five", "admin.error.not_a_number", {"value": "five"}),
    ("/grant @ann", "admin.usage.grant", {}),
    ("/grant", "admin.usage.grant", {}),
    ("/grant !!! 5", "admin.usage.grant", {}),
    ("/setdaily @ann -1", "admin.error.negative", {"value": -1}),
    ("/setdaily default", "admin.usage.setdaily", {}),
    ("/setdaily default 2000000", "admin.error.too_big", {"value": "2000000", "max": MAX_AMOUNT}),
    ("/quota @ghost", "admin.error.unknown_user", {"user": "@ghost"}),
    ("/ban", "admin.usage.ban", {}),
    ("/ban 424242", "admin.error.unknown_user", {"user": 424242}),
    ("/ban @olga", "admin.error.protected", {"user": OWNER_ID}),
    ("/unban", "admin.usage.unban", {}),
    ("/admin", "admin.usage.admin", {}),
    ("/admin promote @ann", "admin.usage.admin", {}),
    ("/admin add @olga", "admin.error.protected", {"user": OWNER_ID}),
    ("/audit many", "admin.error.not_a_number", {"value": "many"}),
]


async def test_refusals_say_which_rule_and_change_nothing(bot: Harness) -> None:
    owner, *_ = await people(bot)
    for command, key, values in REFUSALS:
        assert (command, await say(bot, owner, command)) == (command, t(key, "en", **values))
    assert await bot.store.admin.audit_log() == []
    assert (await bot.store.quotas.balance(ANN)).credits == 0
    assert (await bot.store.quotas.balance(ANN)).daily_allowance == 3


async def test_setdaily_for_everyone_and_for_one_user(bot: Harness) -> None:
    owner, ann, bob, _ = await people(bot)
    assert await say(bot, owner, "/setdaily default 5") == t("admin.default_daily", "en", daily=5)
    assert "of 5" in await say(bot, bob, "/quota")
    reply = await say(bot, owner, "/setdaily @ann 0 abuse")
    assert "0 of 0 free left" in reply
    assert "Free portraits left today: 0 of 0" in await say(bot, ann, "/quota")
    assert [(e.action, e.target) for e in await bot.store.admin.audit_log()] == [
        ("set_daily", str(ANN)), ("set_daily", "default"),
    ]  # fmt: skip


async def test_admin_quota_view_and_plain_quota_for_everyone_else(bot: Harness) -> None:
    owner, _, _, eve = await people(bot)
    await say(bot, owner, "/grant @ann 2 welcome")
    view = await say(bot, owner, "/quota @ann")
    assert "@ann (1001): role user, not banned." in view
    assert "2 credits" in view and "grant" in view and "welcome" in view
    own = await say(bot, eve, "/quota @ann")  # her own quota: nothing about Ann
    assert own.startswith("Free portraits left today") and "Credits: 0" in own
    assert (await say(bot, owner, "/quota")).startswith("Free portraits left today")


async def test_owners_add_and_remove_admins(bot: Harness) -> None:
    owner, ann, _, _ = await people(bot)
    assert await say(bot, ann, "/grant @bob 1") == t("unknown.command", "en", command="/grant")
    assert "role admin" in await say(bot, owner, "/admin add @ann trusted helper")
    assert "1 credit;" in await say(bot, ann, "/grant @bob 1 thanks")
    assert await say(bot, ann, "/admin add @bob") == t("admin.error.owner_only", "en")
    assert "role user" in await say(bot, owner, "/admin remove @ann")
    assert await say(bot, ann, "/stats") == t("unknown.command", "en", command="/stats")
    actions = [(e.actor, e.action, e.target) for e in await bot.store.admin.audit_log()]
    assert actions == [
        (OWNER_ID, "set_role", str(ANN)), (ANN, "grant", str(BOB)), (OWNER_ID, "set_role", str(ANN)),
    ]  # fmt: skip


async def test_ban_cancels_the_running_task_then_unban(tmp_path: Path) -> None:
    """The task was already with the service (billed): it stops, and its unit stays spent."""
    async with running_bot(tmp_path, queue_seconds=3600.0) as h:
        owner, _, bob, _ = await people(h)
        chat = h.fake.private_chat(bob)
        photo = h.fake.send_photo(bob, chat, draw_selfie(), caption="/anime")
        await h.fake.wait_for_message(chat, after=photo.message_id, timeout=WAIT)  # the status message
        (task,) = [t.id for t in await h.store.tasks.active_for_user(BOB)]
        assert (await h.store.quotas.balance(BOB)).free_left == 2
        await eventually(
            lambda: h.store.tasks.get(task), lambda t: t is not None and t.state == TaskState.SUBMITTED
        )

        reply = await say(h, owner, "/ban @bob spam")
        assert "@bob (1002): role user, BANNED (spam)." in reply
        assert f"#{task}" in reply
        stored = await h.store.tasks.get(task)
        assert stored is not None and stored.state == TaskState.CANCELLED
        assert stored.reservation == "committed"
        assert (await h.store.quotas.balance(BOB)).free_left == 2

        assert await say(h, bob, "/start") == t("banned", "en")
        assert await say(h, bob, "/quota") == t("banned", "en")
        assert "not banned" in await say(h, owner, "/unban @bob appeal accepted")
        assert (await say(h, bob, "/quota")).startswith("Free portraits left today: 2 of 3")
        assert [e.action for e in await h.store.admin.audit_log()] == ["unban", "ban"]


async def test_stats_and_audit(bot: Harness) -> None:
    owner, *_ = await people(bot)
    await say(bot, owner, "/grant @ann 3 beta tester")
    await say(bot, owner, "/ban @eve spam")
    stats = await say(bot, owner, "/stats")
    assert stats.startswith("Stats")
    assert "users: 4" in stats and "active today: 4" in stats
    assert "success rate: -" in stats  # nothing finished yet: no rate rather than a made-up 0 %
    audit = await say(bot, owner, "/audit")
    lines = audit.splitlines()
    assert lines[0] == t("admin.audit.title", "en")
    assert "by 1: ban 1003" in lines[1] and "spam" in lines[1]
    assert "by 1: grant 1001" in lines[2] and "beta tester" in lines[2]
    assert len((await say(bot, owner, "/audit 1")).splitlines()) == 2


async def test_admin_commands_in_a_group_do_nothing(bot: Harness) -> None:
    owner, ann, *_ = await people(bot)
    group = bot.fake.group(-100, "Friends", admins=[owner], members=[ann])
    reply = await bot.ask(owner, group, "/grant @ann 5")
    assert reply.body == t("unknown.command", "en", command="/grant")
    assert (await bot.store.quotas.balance(ANN)).credits == 0


async def test_a_cli_grant_while_the_bot_runs_is_seen_at_once(bot: Harness) -> None:
    _, ann, *_ = await people(bot)
    assert "Credits: 0" in await say(bot, ann, "/quota")
    argv = ["--db", str(bot.settings.db_path), "grant", "@ann", "7", "--reason", "support ticket"]
    assert await asyncio.to_thread(run_admin, argv, env={}) == EXIT_OK
    assert "Credits: 7" in await say(bot, ann, "/quota")
    entry = (await bot.store.admin.audit_log())[0]
    assert (entry.actor, entry.action) == (0, "grant") and "via cli:" in entry.details


def _private_message(text: str, reply_to: dict[str, object] | None = None) -> Message:
    chat = {"id": OWNER_ID, "type": "private"}
    data: dict[str, object] = {"message_id": 9, "date": 0, "chat": chat, "text": text,
                               "from": {"id": OWNER_ID, "is_bot": False, "first_name": "Olga"}}  # fmt: skip
    if reply_to is not None:
        data["reply_to_message"] = {"message_id": 8, "date": 0, "chat": chat, **reply_to}
    message = Message.de_json(data, None)
    assert message is not None
    return message


async def test_a_reply_to_a_forwarded_message_names_its_original_sender(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "refs.db") as store:
        await store.users.upsert_seen(ANN, username="ann", first_name="Ann", language_code="en")
        ann: dict[str, object] = {"id": ANN, "is_bot": False, "first_name": "Ann"}
        olga: dict[str, object] = {"id": OWNER_ID, "is_bot": False, "first_name": "Olga"}
        origin: dict[str, object] = {"type": "user", "date": 0, "sender_user": ann}
        forwarded: dict[str, object] = {"text": "pls more credits", "from": olga, "forward_origin": origin}
        target = await resolve_target(store, _private_message("/grant 5 thanks", forwarded), ["5", "thanks"],
                                      usage="admin.usage.grant")  # fmt: skip
        assert (target.user.id, target.rest) == (ANN, ["5", "thanks"])
        # A reply to the bot's own answer names nobody: the arguments must.
        bot_user: dict[str, object] = {"id": 42, "is_bot": True, "first_name": "Bot"}
        bot_answer: dict[str, object] = {"text": "ok", "from": bot_user}
        target = await resolve_target(store, _private_message("/grant @ann 5", bot_answer), ["@ann", "5"],
                                      usage="admin.usage.grant")  # fmt: skip
        assert (target.user.id, target.rest) == (ANN, ["5"])
        assert replied_user_id(_private_message("/grant 5", bot_answer)) is None
        with pytest.raises(AdminError) as refused:
            await resolve_target(store, _private_message("/grant 5", bot_answer), ["5"], usage="x")
        assert refused.value.key == "admin.error.unknown_user"  # "5" read as a user id nobody has


async def test_a_long_audit_log_fits_in_one_telegram_message_newest_first(bot: Harness) -> None:
    owner, *_ = await people(bot)
    for n in range(50):
        await bot.store.admin.audit(OWNER_ID, "grant", target=str(ANN), details=f"entry {n:02d} " + "x" * 200)
    reply = await say(bot, owner, "/audit 50")
    lines = reply.splitlines()
    assert len(reply) <= render.MAX_MESSAGE
    assert lines[0] == t("admin.audit.title", "en")
    assert "entry 49" in lines[1] and "entry 48" in lines[2]  # newest first, long details shortened
    assert all(len(line) < 250 for line in lines)
    shown = len(lines) - 2
    assert 10 < shown < 50 and lines[-1] == t("admin.more", "en", count=50 - shown)


def test_stats_and_ledger_stay_under_the_message_limit() -> None:
    errors = {f"image:code{n:04d}": n for n in range(2000)}
    stats = Stats(
        at=0.0, users_total=1, active_today=1, active_7d=1, tasks_by_state={"done": 1}, tasks_by_error=errors,
        success_rate=0.5, latency_p50=None, latency_p95=None, quota_spent=1, quota_spent_free=1,
        quota_spent_credits=0, quota_spent_today=0, top_users=(),
    )  # fmt: skip
    text = render.stats("en", stats)
    assert len(text) <= render.MAX_MESSAGE and "image:code0000=0" in text and text.endswith("top users: -")
    entries = [
        LedgerEntry(id=n, user_id=ANN, task_id=None, kind="grant", free=0, credits=1, actor=OWNER_ID,
                    reason="why " * 60, at=0.0)
        for n in range(100, 0, -1)
    ]  # fmt: skip
    ledger = render.ledger("en", entries, budget=2000)
    assert len(ledger) <= 2000 and ledger.splitlines()[1].startswith("#100 ")
    assert ledger.splitlines()[-1].startswith("…and")
