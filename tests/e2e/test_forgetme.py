"""/forgetme through the fake Telegram: asked, confirmed with a button, personal data gone, balance kept."""

from __future__ import annotations

from fake_telegram import FakeMessage
from storage import TaskState
from tests.e2e.conftest import Harness, Person, is_photo, says
from tests.e2e.images import draw_selfie


def buttons(message: FakeMessage) -> dict[str, str | None]:
    return {text: data for row in message.buttons for text, data in row}


async def _with_history(harness: Harness, alice: Person) -> None:
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    await alice.say("/prompt red scarf", says("prompt.saved", prompt="red scarf"))
    await alice.say("/anime", is_photo)
    await harness.settle()
    await harness.services.store.quotas.grant(alice.user.id, 2, actor=0, reason="gift for Alice")


async def test_confirmed_forget_deletes_images_prompt_and_history_but_not_the_balance(
    harness: Harness, alice: Person
) -> None:
    store = harness.services.store
    await _with_history(harness, alice)
    balance = await store.quotas.balance(alice.user.id)
    assert (balance.free_left, balance.credits) == (2, 2)

    question = await alice.say("/forgetme", says("forget.confirm"))
    choices = buttons(question)
    assert set(choices) == {alice.text("forget.button.yes"), alice.text("forget.button.no")}
    await alice.tap(question, choices[alice.text("forget.button.yes")] or "")

    assert question.body == alice.text("forget.done") and question.buttons == []
    assert await store.tasks.recent_for_user(alice.user.id) == []
    settings = await store.users.get_settings(alice.user.id)
    assert (settings.selfie_file_id, settings.prompt) == (None, "")
    assert all(entry.reason == "" for entry in await store.quotas.ledger(alice.user.id, limit=50))
    assert await store.quotas.balance(alice.user.id) == balance
    assert (await store.quotas.check()).ok
    # What the user sees afterwards: nothing of theirs is left.
    await alice.say("/history", says("history.empty"))
    await alice.say("/prompt", says("prompt.none", prompt=""))
    await alice.say("/anime", says("generate.no_selfie"))


async def test_declining_keeps_everything(harness: Harness, alice: Person) -> None:
    await _with_history(harness, alice)
    question = await alice.say("/forgetme", says("forget.confirm"))
    await alice.tap(question, buttons(question)[alice.text("forget.button.no")] or "")
    assert question.body == alice.text("forget.kept") and question.buttons == []
    assert len(await harness.services.store.tasks.recent_for_user(alice.user.id)) == 1
    await alice.say("/prompt", says("prompt.current", prompt="red scarf"))


async def test_refused_while_a_portrait_is_being_made(harness: Harness, alice: Person) -> None:
    harness.set_timings(generate=600)
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    question = await alice.say("/forgetme", says("forget.confirm"))  # asked while nothing runs...
    await alice.say("/anime")
    await harness.until_state(alice, TaskState.SUBMITTED)  # polled while submitted
    await alice.say("/forgetme", says("forget.busy"))
    answer = await alice.click(question, buttons(question)[alice.text("forget.button.yes")] or "")
    assert answer == {"text": alice.text("forget.busy"), "show_alert": True, "url": None}  # ...confirmed late
    assert (await harness.services.store.users.get_settings(alice.user.id)).selfie_file_id is not None
    assert len(await harness.services.store.tasks.recent_for_user(alice.user.id)) == 1


async def test_only_the_asker_can_confirm(harness: Harness, alice: Person) -> None:
    await _with_history(harness, alice)
    bob = harness.person(1002, "Bob")
    question = await alice.say("/forgetme", says("forget.confirm"))
    yes = buttons(question)[alice.text("forget.button.yes")] or ""
    answer = await bob.click(question, yes)
    assert answer["text"] == bob.text("callback.not_yours") and answer["show_alert"]
    assert len(await harness.services.store.tasks.recent_for_user(alice.user.id)) == 1


async def test_in_a_group_it_points_to_the_private_chat(harness: Harness, alice: Person) -> None:
    group = harness.fake.group(-100900, "Friends", members=[alice.user])
    sent = harness.fake.send_text(alice.user, group, "/forgetme")
    reply = await harness.fake.wait_for_message(group, after=sent.message_id, timeout=10)
    assert reply.body == alice.text("forget.private_only") and reply.buttons == []
