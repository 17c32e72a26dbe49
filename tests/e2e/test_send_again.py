"""A bot killed inside sendPhoto: after the restart the user gets no second photo and no refund, but a
note with "Send it again", which delivers the portrait once (through the real Application, the fake Bot
API and the emulator)."""

from __future__ import annotations

from storage import UNCONFIRMED, Delivery, Store, Task, TaskState
from tests.e2e.conftest import Harness, Person, is_photo, says
from tests.e2e.images import draw_selfie


def photos(person: Person) -> list[object]:
    return [m for m in person.sent() if m.photo]


async def killed_inside_send_photo(harness: Harness, alice: Person) -> Task:
    """The process died just after the `sending` mark: whether the photo arrived nobody knows."""
    harness.set_timings(generate=600)
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    await alice.say("/anime")
    task = await harness.until_state(alice, TaskState.SUBMITTED)
    await harness.stop()
    async with await Store.open(harness.tmp_path / "bot.db") as store:
        await store.tasks.transition(task.id, TaskState.DELIVERING, delivery=Delivery.SENDING)
    harness.emulator_time.advance(700)  # the service finished it meanwhile
    await harness.start()
    note = await harness.fake.wait_for_message(alice.chat, says("error.delivery_uncertain"), timeout=10)
    done = await harness.until_state(alice, TaskState.DONE)
    await harness.settle()
    assert note.buttons == [[(alice.text("button.send_again"), f"resend:{task.id}")]]
    return done


async def test_send_it_again_delivers_the_spent_portrait_exactly_once(
    harness: Harness, alice: Person
) -> None:
    task = await killed_inside_send_photo(harness, alice)
    assert (task.error_code, task.reservation) == (UNCONFIRMED, "committed")
    assert photos(alice) == []  # never resent on its own
    assert (await harness.services.store.quotas.balance(alice.user.id)).free_left == 2  # spent, not refunded
    history = await alice.say("/history")
    assert alice.text("state.unconfirmed") in history.body

    note = next(m for m in alice.sent() if m.body == alice.text("error.delivery_uncertain"))
    answer = await alice.click(note, f"resend:{task.id}")
    assert answer.get("text") == alice.text("resend.sending")
    photo = await harness.fake.wait_for_message(alice.chat, is_photo, timeout=10)
    assert photo.reply_to is not None and photo.reply_to.message_id == task.request_message_id

    again = await alice.click(note, f"resend:{task.id}")
    assert again.get("text") == alice.text("resend.already") and again.get("show_alert")
    await harness.settle()
    assert len(photos(alice)) == 1
    assert harness.emulator_state.submits_received == 1
    assert (await harness.services.store.quotas.balance(alice.user.id)).free_left == 2
    stored = await harness.services.store.tasks.get(task.id)
    assert stored is not None and stored.result_file_id in {size.file_id for size in photo.photo}
    history = await alice.say("/history")
    assert alice.text("state.done") in history.body and alice.text("state.unconfirmed") not in history.body
    assert (await harness.services.store.quotas.check()).ok


async def test_a_press_after_the_service_forgot_the_result_says_it_is_too_late(
    harness: Harness, alice: Person
) -> None:
    task = await killed_inside_send_photo(harness, alice)
    harness.emulator_state.store.tasks.clear()  # past its 12 hours the service answers not_found
    note = next(m for m in alice.sent() if m.body == alice.text("error.delivery_uncertain"))
    await alice.click(note, f"resend:{task.id}")
    await harness.fake.wait_for_message(alice.chat, says("resend.too_late"), timeout=10)
    assert photos(alice) == []
    assert (await harness.services.store.quotas.balance(alice.user.id)).free_left == 2  # still spent
    assert (await harness.services.store.quotas.check()).ok


async def test_only_the_requester_may_press_it(harness: Harness, alice: Person) -> None:
    task = await killed_inside_send_photo(harness, alice)
    bob = harness.person(1002, "Bob")  # e.g. a group member: the button answers only its requester
    note = next(m for m in alice.sent() if m.body == alice.text("error.delivery_uncertain"))
    query = harness.fake.click(bob.user, note, f"resend:{task.id}")
    answer = await harness.fake.wait_for(lambda: harness.fake.callback_answer(query), 10)
    assert answer.get("text") == alice.text("callback.not_yours") and answer.get("show_alert")
    await harness.settle()
    assert photos(alice) == []
