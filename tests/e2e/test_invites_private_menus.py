"""Invites (both sides credited once, never oneself, only new users), private mode, menus per scope."""

from __future__ import annotations

import aiosqlite

from bot.config_values import AccessList, CreditPack
from bot.handlers.invite import invite_link
from bot.replies import t
from tests.e2e.conftest import Harness, HarnessFactory, Person, says

OWNER = 4242


async def _link(h: Harness, person: Person) -> str:
    reply = await person.say("/invite")
    code = await h.services.store.referrals.code_for(person.user.id)
    link = invite_link(h.fake.bot_user.username or "", code)
    assert reply.body == t("invite.text", "en", bonus="2 credits", link=link, count=0)
    return link.rsplit("=", 1)[1]


async def test_a_new_user_through_an_invite_link_credits_both_once(make_harness: HarnessFactory) -> None:
    h = await make_harness(referral_bonus=2)
    alice = h.person()
    start = await _link(h, alice)
    bob = h.person(1002, "Bob", "zh")
    welcome = await bob.say(f"/start {start}")
    assert welcome.body == t("start.welcome", "zh", name="Bob", free_left=3, daily=3, credits="2 个积分")
    await bob.reply_after(welcome, says("invite.welcome", "zh", bonus="2 个积分", balance="2 个积分"))
    await h.fake.wait_for_message(alice.chat, t("invite.inviter", "en", name="Bob", bonus="2 credits",
                                                balance="2 credits"))  # fmt: skip
    again = await bob.say(f"/start {start}")
    await bob.reply_after(again, says("invite.not_new", "zh"))
    for person in (alice, bob):
        assert (await h.services.store.quotas.balance(person.user.id)).credits == 2
        entries = await h.services.store.quotas.ledger(person.user.id)
        assert [(e.kind, e.credits) for e in entries] == [("referral", 2)]
    quota = await bob.say("/quota")
    assert t("quota.referral", "zh", credits="2 个积分") in quota.body
    assert (await h.services.store.quotas.check()).ok


async def test_your_own_link_and_an_old_user_get_no_bonus(make_harness: HarnessFactory) -> None:
    h = await make_harness(referral_bonus=2)
    alice = h.person()
    start = await _link(h, alice)
    welcome = await alice.say(f"/start {start}")
    await alice.reply_after(welcome, says("invite.self"))
    carol = h.person(1003, "Carol")
    await carol.say("/help")  # Carol used the bot before she got the link
    welcome = await carol.say(f"/start {start}")
    await carol.reply_after(welcome, says("invite.not_new"))
    stranger_code = await h.person(1004, "Dan").say("/start ref_nosuchcode")
    await h.fake.wait_for_message(1004, t("invite.unknown", "en"), after=stranger_code.message_id)
    for user_id in (1001, 1003, 1004):
        assert (await h.services.store.quotas.balance(user_id)).credits == 0


async def test_invites_are_off_at_zero(harness: Harness, alice: Person) -> None:
    await alice.say("/invite", says("invite.off"))


async def test_private_mode_refuses_a_stranger_and_stores_nothing(make_harness: HarnessFactory) -> None:
    h = await make_harness(
        allowed_users=AccessList(frozenset({1001}), frozenset({"bobby"})),
        allowed_chats=AccessList(frozenset({-100555})),
        admin_ids=frozenset({OWNER}),
    )
    alice, owner = h.person(), h.person(OWNER, "Olga")
    bob = h.person(1002, "Bobby")  # allowed by @username
    mallory = h.person(1666, "Mallory", "zh")
    await alice.say("/help", says("help.text", max_prompt=300))
    await bob.say("/quota")
    await owner.say("/stats")
    await mallory.say("/start", says("private.refused", "zh"))
    await mallory.say("hello?", says("private.refused", "zh"))
    team = h.fake.group(-100555, "Team", members=[mallory.user])
    sent = h.fake.send_text(mallory.user, team, "/quota")
    await h.fake.wait_for_message(team, t("quota.text", "zh", free_left=3, daily=3, credits=0, resets="")
                                  .split("\n")[0], after=sent.message_id)  # fmt: skip
    other = h.fake.group(-100777000, "Elsewhere", members=[mallory.user])
    sent = h.fake.send_text(mallory.user, other, "/anime")
    await h.fake.wait_for_message(other, says("private.refused", "zh"), after=sent.message_id)
    async with aiosqlite.connect(h.tmp_path / "bot.db") as db:
        users = {row[0] for row in await db.execute_fetchall("SELECT id FROM users")}
        chats = {row[0] for row in await db.execute_fetchall("SELECT id FROM chats")}
    assert users == {1001, 1002, OWNER, 1666}  # Mallory only through the allowed team group
    assert -100777000 not in chats


async def test_a_stranger_in_private_mode_leaves_no_users_row(make_harness: HarnessFactory) -> None:
    h = await make_harness(allowed_users=AccessList(frozenset({1001})))
    mallory = h.person(1666, "Mallory")
    await mallory.say("/start", says("private.refused"))
    assert await h.services.store.users.get(1666) is None


async def test_menus_per_scope_and_descriptions_per_language(make_harness: HarnessFactory) -> None:
    fake_owner_chat = OWNER
    h = await make_harness(
        admin_ids=frozenset({OWNER, 9999}), credit_packs=(CreditPack(10, 50),), referral_bonus=1
    )
    # The owner opened the bot before this start; owner 9999 never did (skipped, not fatal).
    h.person(fake_owner_chat, "Olga")
    await h.stop()
    await h.start()
    fake = h.fake
    private = fake.commands_for()
    assert (
        private[0] == "anime" and {"buy", "paysupport", "invite"} <= set(private) and "stats" not in private
    )
    assert fake.commands_for(language_code="zh") == private
    assert fake.commands_for("all_group_chats") == ["anime", "group", "quota", "help"]
    admin_menu = fake.commands_for("chat", chat_id=OWNER)
    assert {"stats", "grant", "ban", "refund", "payments"} <= set(admin_menu) and set(private) <= set(
        admin_menu
    )
    assert fake.commands_for("chat", chat_id=9999) == []
    menu = {c["command"]: c["description"] for c in fake.commands[next(iter(fake.commands))]}
    assert menu["anime"] == t("command.anime", "en")
    assert fake.description() == t("bot.description", "en")
    assert fake.description(short=True, language_code="zh") == t("bot.short_description", "zh")
