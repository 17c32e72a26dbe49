"""Talking to the bot: welcome, help, unknown commands, stray text, languages, the command menu."""

from __future__ import annotations

from bot.replies import catalogue, t
from tests.e2e.conftest import Harness, Person, says


async def test_start_welcomes_by_name_and_shows_todays_quota(alice: Person) -> None:
    reply = await alice.say("/start")
    assert reply.body == t("start.welcome", "en", name="Alice", free_left=3, daily=3, credits="0 credits")
    assert reply.reply_to is not None and reply.reply_to.body == "/start"


async def test_help_lists_every_menu_command(alice: Person) -> None:
    reply = await alice.say("/help")
    for command in ("/anime", "/generate", "/prompt", "/style", "/face", "/settings", "/quota", "/history",
                    "/cancel", "/lang"):  # fmt: skip
        assert command in reply.body


async def test_unknown_command_is_named_back_with_a_hint(alice: Person) -> None:
    reply = await alice.say("/frobnicate now")
    assert reply.body == t("unknown.command", "en", command="/frobnicate")


async def test_plain_text_gets_a_hint_instead_of_silence(alice: Person) -> None:
    reply = await alice.say("hello?")
    assert reply.body == t("hint.send_selfie", "en")


async def test_chinese_client_is_answered_in_chinese(harness: Harness) -> None:
    wang = harness.person(2002, "Wang", lang="zh-hans")
    reply = await wang.say("/quota")
    assert reply.body.startswith(catalogue("zh")["quota.text"].split("{")[0])


async def test_lang_switches_and_is_remembered(alice: Person) -> None:
    await alice.say("/lang zh", says("lang.set", "zh", language=t("language.zh", "zh")))
    reply = await alice.say("/cancel")
    assert reply.body == t("cancel.nothing", "zh")
    usage = await alice.say("/lang klingon")
    assert usage.body == t("lang.usage", "zh", current=t("language.zh", "zh"))


async def test_command_menu_is_published_in_both_languages(harness: Harness) -> None:
    calls = harness.fake.calls_to("setMyCommands", ok=True)
    by_language = {call.params.get("language_code"): call.params for call in calls}
    assert set(by_language) == {None, "zh"}
    english = str(by_language[None]["commands"])
    assert "anime" in english and t("command.anime", "en") in english
    assert t("command.anime", "zh") in str(by_language["zh"]["commands"])


async def test_every_update_records_the_user(harness: Harness, alice: Person) -> None:
    await alice.say("/help")
    user = await harness.services.store.users.get(alice.user.id)
    assert user is not None and user.first_name == "Alice" and user.username == "alice"


async def test_the_long_poll_goes_out_in_whole_seconds_as_the_bot_api_documents_it(
    harness: Harness, alice: Person
) -> None:
    """getUpdates' `timeout` is an Integer in the Bot API: sent as 10, not 10.0 (the poller builds the call
    itself, bot/ops/polling.py)."""
    await alice.say("/help")
    polls = [call for call in harness.fake.calls_to("getUpdates") if "timeout" in call.params]
    assert polls and all(type(call.params["timeout"]) is int for call in polls)
