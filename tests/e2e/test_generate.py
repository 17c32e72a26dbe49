"""Generations end to end: the request, the status message, the portrait, and every refusal on the way."""

from __future__ import annotations

import pytest

from bot.chat.progress import status_text
from storage import Task, TaskState
from tests.e2e.conftest import Harness, HarnessFactory, Person, is_photo, says
from tests.e2e.images import draw_selfie, draw_style, magenta_selfie


async def selfie(person: Person, data: bytes | None = None) -> None:
    await person.photo(data or draw_selfie(), expect=says("face.saved"))


async def last_task(harness: Harness, person: Person) -> Task:
    """The person's newest task, once the runner has finished whatever it was doing."""
    await harness.settle()
    tasks = await harness.services.store.tasks.recent_for_user(person.user.id, limit=1)
    return tasks[0]


async def free_left(harness: Harness, person: Person) -> int:
    return (await harness.services.store.quotas.balance(person.user.id)).free_left


async def test_selfie_then_anime_delivers_a_portrait_with_buttons(harness: Harness, alice: Person) -> None:
    await selfie(alice)
    request = harness.fake.send_text(alice.user, alice.chat, "/anime")
    status = await alice.reply_after(request)
    portrait = await alice.reply_after(request, is_photo)
    assert portrait.reply_to is not None and portrait.reply_to.message_id == request.message_id
    buttons = [data for row in portrait.buttons for _, data in row]
    task = await last_task(harness, alice)
    assert buttons == [f"again:{task.id}", f"seed:{task.id}"]
    assert task.state is TaskState.DONE and task.status_message_id == status.message_id
    assert (status.history or [status.body])[0] == status_text("queued", "en", 0)
    assert status.body.startswith(status_text("done", "en", 0).split("0")[0])
    assert await free_left(harness, alice) == 2


async def test_anime_without_a_selfie_asks_for_one(harness: Harness, alice: Person) -> None:
    await alice.say("/anime", says("generate.no_selfie"))
    assert await harness.services.store.tasks.recent_for_user(alice.user.id) == []


async def test_generate_is_an_alias(harness: Harness, alice: Person) -> None:
    await selfie(alice)
    await alice.say("/generate", is_photo)


async def test_caption_anime_sets_the_selfie_and_uses_the_caption_as_prompt(
    harness: Harness, alice: Person
) -> None:
    await alice.photo(draw_selfie(), caption="/anime cute, smiling", expect=is_photo)
    task = await last_task(harness, alice)
    assert task.params["user_prompt"] == "cute, smiling"
    assert str(task.params["prompt"]).endswith(",cute, smiling")
    assert (await harness.services.store.users.get_settings(alice.user.id)).prompt == ""  # just this once


async def test_anime_text_overrides_the_stored_prompt_once(harness: Harness, alice: Person) -> None:
    await selfie(alice)
    await alice.say("/prompt red scarf", says("prompt.saved", prompt="red scarf"))
    await alice.say("/anime in the rain", is_photo)
    assert (await last_task(harness, alice)).params["user_prompt"] == "in the rain"
    await alice.say("/anime", is_photo)
    assert (await last_task(harness, alice)).params["user_prompt"] == "red scarf"


async def test_album_with_anime_caption_generates_with_both_images(harness: Harness, alice: Person) -> None:
    harness.fake.send_photo(alice.user, alice.chat, draw_selfie(), caption="/anime", media_group_id="a1")
    last = harness.fake.send_photo(alice.user, alice.chat, draw_style(), media_group_id="a1")
    await alice.reply_after(last, is_photo)
    task = await last_task(harness, alice)
    assert task.style_file_id is not None and task.params["use_style_image"] is True


@pytest.mark.parametrize(
    ("prompt", "key"),
    [("a risky pose", "error.risk.input_text"), ("blocklisted hero", "error.risk.blocklist")],
)
async def test_refused_prompt_is_explained_and_refunded(
    harness: Harness, alice: Person, prompt: str, key: str
) -> None:
    await selfie(alice)
    await alice.say(f"/anime {prompt}", says(key))
    assert (await last_task(harness, alice)).state is TaskState.FAILED
    assert await free_left(harness, alice) == 3


async def test_a_chinese_user_hears_the_refusal_in_chinese(harness: Harness) -> None:
    wang = harness.person(2002, "Wang", lang="zh-hans")
    await wang.photo(draw_selfie(), expect=says("face.saved", "zh"))
    await wang.say("/anime risky", says("error.risk.input_text", "zh"))


async def test_refused_input_photo_is_explained_and_refunded(harness: Harness, alice: Person) -> None:
    await selfie(alice, magenta_selfie())
    await alice.say("/anime", says("error.risk.input_image"))
    assert await free_left(harness, alice) == 3


@pytest.mark.parametrize(("seed", "key"), [(50511, "error.risk.output"), (60102, "error.no_face")])
async def test_upstream_failures_are_explained_and_refunded(
    harness: Harness, alice: Person, seed: int, key: str
) -> None:
    await selfie(alice)
    await harness.services.store.users.update_settings(alice.user.id, seed=seed)
    await alice.say("/anime", says(key))
    task = await last_task(harness, alice)
    assert task.state is TaskState.FAILED and task.error_code == str(seed)
    assert await free_left(harness, alice) == 3


async def test_over_long_prompt_is_refused_before_charging(harness: Harness, alice: Person) -> None:
    await selfie(alice)
    limit = harness.services.settings.max_prompt_length
    reply = await alice.say("/anime " + "x" * (limit + 5))
    assert reply.body == alice.text("error.prompt_too_long", length=limit + 5, limit=limit)
    assert await harness.services.store.tasks.recent_for_user(alice.user.id) == []


async def test_quota_exhausted_says_when_it_resets(make_harness: HarnessFactory) -> None:
    harness = await make_harness(daily_free_quota=1)
    alice = harness.person()
    await selfie(alice)
    await alice.say("/anime", is_photo)
    reply = await alice.say("/anime")
    assert reply.body.startswith(alice.text("quota.exhausted", resets="").split("resets")[0])
    assert "UTC" in reply.body
    assert len(await harness.services.store.tasks.recent_for_user(alice.user.id)) == 1


async def test_second_request_while_one_runs_is_politely_refused(harness: Harness, alice: Person) -> None:
    harness.set_timings(generate=600)
    await selfie(alice)
    await alice.say("/anime")
    await alice.say("/anime again", says("generate.busy", limit=1))
    assert await free_left(harness, alice) == 2
    await harness.until_state(alice, TaskState.SUBMITTED)  # polled while submitted
    harness.emulator_time.advance(700)  # the emulator finishes the task (within the signing clock skew)
    await alice.fake.wait_for_message(alice.chat, is_photo, timeout=10)


async def test_again_and_new_seed_make_new_portraits(harness: Harness, alice: Person) -> None:
    await selfie(alice)
    first = await alice.say("/anime", is_photo)
    original = await last_task(harness, alice)
    answer = await alice.click(first, f"again:{original.id}")
    assert answer["text"] == alice.text("repeat.started")
    await alice.fake.wait_for(lambda: len([m for m in alice.sent() if m.photo]) == 2 or None, 10)
    again = await last_task(harness, alice)
    assert again.id != original.id and again.params == original.params
    await harness.settle()
    await alice.click(first, f"seed:{original.id}")
    await alice.fake.wait_for(lambda: len([m for m in alice.sent() if m.photo]) == 3 or None, 10)
    reseeded = await last_task(harness, alice)
    assert isinstance(reseeded.params["seed"], int) and reseeded.params["seed"] >= 0
    assert reseeded.params["seed"] != original.params["seed"]
    assert {k: v for k, v in reseeded.params.items() if k != "seed"} == {
        k: v for k, v in original.params.items() if k != "seed"
    }
    assert await free_left(harness, alice) == 0


async def test_someone_elses_again_button_changes_nothing(harness: Harness, alice: Person) -> None:
    await selfie(alice)
    first = await alice.say("/anime", is_photo)
    task = await last_task(harness, alice)
    bob = harness.person(1002, "Bob")
    query = harness.fake.click(bob.user, first, f"again:{task.id}")
    answer = await harness.fake.wait_for(lambda: harness.fake.callback_answer(query), 10)
    assert answer["text"] == alice.text("callback.not_yours") and answer["show_alert"] is True
    assert await harness.services.store.tasks.recent_for_user(bob.user.id) == []


async def test_a_redelivered_request_is_not_charged_twice(harness: Harness, alice: Person) -> None:
    await selfie(alice)
    request = harness.fake.send_text(alice.user, alice.chat, "/anime")
    await alice.reply_after(request, is_photo)
    harness.fake.push_update("message", request.to_json())  # Telegram re-sends an unacknowledged update
    for _ in range(2):  # updates are fetched in order: two round trips later the re-delivery was handled
        await alice.say("/help")
    await harness.settle()
    assert len(await harness.services.store.tasks.recent_for_user(alice.user.id)) == 1
    assert len([m for m in alice.sent() if m.photo]) == 1
    assert await free_left(harness, alice) == 2


@pytest.mark.parametrize("reachable", ["inaccessible", "absent"])
async def test_again_under_a_message_too_old_to_reach_says_the_button_expired(
    harness: Harness, alice: Person, reachable: str
) -> None:
    await selfie(alice)
    first = await alice.say("/anime", is_photo)
    task = await last_task(harness, alice)
    await harness.settle()
    fake, query_id = harness.fake, "4999999999"
    # What fake.click records, for a query its click() cannot make (it needs a reachable message).
    fake.callback_queries[query_id] = {
        "answered": False, "answer": None, "chat": alice.chat, "user": alice.user,
    }  # fmt: skip
    where: dict[str, object] = (
        {"message": {"chat": alice.chat.to_json(), "message_id": first.message_id, "date": 0}}  # Bot API 7.0
        if reachable == "inaccessible"
        else {"inline_message_id": "AAAA"}  # no message at all
    )
    fake.push_update("callback_query", {
        "id": query_id, "from": alice.user.to_json(), "chat_instance": "1", "data": f"again:{task.id}",
        **where,
    })  # fmt: skip
    answer = await fake.wait_for(lambda: fake.callback_answer(query_id), 10)
    assert answer["text"] == alice.text("callback.stale")
    assert (await last_task(harness, alice)).id == task.id


async def test_generation_times_are_learnt_and_kept_in_the_store(harness: Harness) -> None:
    """The bot plans its polls from the generation times it has seen (api_client.learning): each finished
    portrait is recorded in the store, so a restarted bot keeps the schedule it learnt."""
    alice = harness.person()
    await selfie(alice)
    await alice.say("/anime", is_photo)
    await harness.settle()
    saved = await harness.services.store.timings.load()
    assert len(saved) == 1


async def test_the_times_learnt_since_the_last_save_are_saved_when_the_bot_stops(harness: Harness) -> None:
    """A bucket holding steady is saved at most every half minute; stopping the runner saves the rest."""
    alice, bob = harness.person(), harness.person()
    for person in (alice, bob):
        await selfie(person)
        await person.say("/anime", is_photo)
        await harness.settle()
    learner = harness.services.learner
    assert learner is not None
    ((bucket, times),) = learner.model.buckets.items()
    await harness.services.stop_runner()
    assert (await harness.services.store.timings.load())[bucket] == times.to_dict()


async def test_anime_with_only_invisible_words_uses_the_saved_prompt(harness: Harness) -> None:
    """Regression (found feeding bad input): `/anime` followed by zero-width or control characters sent
    them upstream as the user's words instead of the saved /prompt."""
    alice = harness.person()
    await selfie(alice)
    await alice.say("/prompt smiling")
    await alice.say("/anime \u200b\u200d\u0007", is_photo)
    (task,) = await harness.services.store.tasks.recent_for_user(alice.user.id)
    assert task.params["user_prompt"] == "smiling"
