"""TelegramNotifier and StatusReporter against the fake Bot API over real HTTP (what a user would see)."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from PIL import Image
from telegram import Bot
from telegram.request import HTTPXRequest

from api_client.clock import FakeClock
from api_client.errors import ImageRejected
from bot.chat.notifier import MAX_DOWNLOAD_BYTES, TelegramNotifier
from bot.chat.progress import CHAT_ACTIONS_KEPT, StatusReporter, status_text
from bot.config import Secret, Settings
from bot.jobs.notifier import DeliveryUncertain, RecipientGone, TryLater
from bot.replies import t
from bot.replies.errors import FriendlyError
from fake_telegram import ApiError, FakeChat, FakeMessage, FakeTelegram, serve
from storage import Chat, Task, TaskState

START = 1_790_000_000.0
ADMIN_CHAT = 4242


def jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 200)).save(buf, "JPEG")
    return buf.getvalue()


def make_task(clock: FakeClock, **fields: Any) -> Task:
    """A task as the runner hands it over for delivery."""
    values: dict[str, Any] = {
        "id": 7, "user_id": 1, "chat_id": 1, "origin_key": "k", "request_message_id": None,
        "status_message_id": None, "face_file_id": "f", "style_file_id": None, "params": {},
        "state": TaskState.DELIVERING, "upstream_task_id": "u", "error_code": None, "attempts": 0,
        "result_file_id": None, "lease_owner": None, "lease_until": None, "next_poll_at": None,
        "created_at": clock.now(), "updated_at": clock.now(), "finished_at": None,
    }
    values.update(fields)
    return Task(**values)


@dataclass
class Rig:
    fake: FakeTelegram
    bot: Bot
    clock: FakeClock
    notifier: TelegramNotifier
    chat: FakeChat

    async def task(self, *, params: dict[str, object] | None = None, task_id: int = 7) -> Task:
        """A task as the handler leaves it: the user's request message and the bot's status reply."""
        request = self.fake.send_text(self.chat.id, self.chat, "/anime")
        status = await self.bot.send_message(self.chat.id, t("status.queued", "en", elapsed=0))
        return make_task(
            self.clock, id=task_id, user_id=self.chat.id, chat_id=self.chat.id,
            request_message_id=request.message_id, status_message_id=status.message_id,
            params=params or {"preset": "watercolor"},
        )

    def status_message(self, task: Task) -> FakeMessage:
        assert task.status_message_id is not None
        return self.fake.messages[(task.chat_id, task.status_message_id)]

    def edits(self) -> list[str]:
        return [c.params["text"] for c in self.fake.calls_to("editMessageText", ok=True)]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    fake = FakeTelegram()
    user = fake.add_user(1001, "Alice")
    chat = fake.private_chat(user)
    admin = fake.add_user(ADMIN_CHAT, "Admin")
    fake.private_chat(admin)
    clock = FakeClock(START)
    settings = Settings(
        telegram_bot_token=Secret(fake.token), volc_access_key=Secret("a"), volc_secret_key=Secret("s"),
        status_edit_interval=3.0, admin_chat_id=ADMIN_CHAT,
    )
    async with serve(fake) as url:
        bot = Bot(
            fake.token, base_url=f"{url}/bot", base_file_url=f"{url}/file/bot",
            request=HTTPXRequest(read_timeout=0.5, media_write_timeout=2.0),
        )
        async with bot:
            notifier = TelegramNotifier(bot, settings=settings, clock=clock)
            yield Rig(fake, bot, clock, notifier, chat)
            await notifier.aclose()


async def test_status_edits_are_throttled_but_the_latest_stage_is_shown(rig: Rig) -> None:
    task = await rig.task()
    for stage in ("preparing", "submitting", "in_queue"):  # within one interval
        await rig.notifier.status(task, stage, 0.5, lang="en")
    assert rig.edits() == []  # nothing yet: the handler's post counts as the first write
    await rig.fake.wait_for(lambda: rig.edits() or None)
    assert rig.edits() == [status_text("in_queue", "en", 0.5)]  # the trailing edit: latest only

    await rig.notifier.status(task, "generating", 4.0, lang="en")
    await rig.fake.wait_for(lambda: len(rig.edits()) == 2 or None)
    assert rig.edits()[-1] == status_text("generating", "en", 4.0)
    assert rig.fake.calls_to("sendChatAction")[0].params["action"] == "upload_photo"
    message = rig.status_message(task)
    assert message.text == status_text("generating", "en", 4.0)


async def test_final_edit_is_immediate_and_cancels_a_waiting_one(rig: Rig) -> None:
    task = await rig.task()
    await rig.notifier.status(task, "in_queue", 0.1, lang="en")  # queued for the trailing edit
    await rig.notifier.status(task, "retrying", 0.2, lang="en", final=True)
    assert rig.edits() == [status_text("retrying", "en", 0.2)]
    await rig.notifier.progress.aclose()
    assert rig.edits() == [status_text("retrying", "en", 0.2)]


async def test_message_not_modified_counts_as_success(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    task = await rig.task()
    reporter = StatusReporter(rig.bot, interval=0.0, clock=rig.clock)
    same = t("status.queued", "en", elapsed=0)  # what the status message already says
    with caplog.at_level(logging.WARNING):
        await reporter.edit(task, same)
        await reporter.edit(task, same)  # remembered: not even sent again
    refused = rig.fake.calls_to("editMessageText", ok=False)
    assert len(refused) == 1 and "not modified" in (refused[0].error or "")
    assert not [r for r in caplog.records if r.name == "bot.chat.progress"]


async def test_a_blocked_chat_raises_recipient_gone(rig: Rig) -> None:
    task = await rig.task()
    rig.fake.block(rig.chat.id)
    with pytest.raises(RecipientGone):
        await rig.notifier.status(task, "generating", 9.0, lang="en", final=True)
    with pytest.raises(RecipientGone):
        await rig.notifier.deliver(task, jpeg(800, 800), lang="en")
    with pytest.raises(RecipientGone):
        await rig.notifier.failed(task, FriendlyError("error.busy"), "en")


async def test_deliver_replies_with_photo_caption_buttons_and_a_full_size_document(rig: Rig) -> None:
    task = await rig.task()
    image = jpeg(1500, 1500)
    file_id = await rig.notifier.deliver(task, image, lang="zh")
    photo_call = rig.fake.calls_to("sendPhoto", ok=True)[0]
    photo = next(m for m in rig.fake.sent_messages(rig.chat.id) if m.photo)
    assert file_id in {size.file_id for size in photo.photo}
    assert photo.reply_to is not None and photo.reply_to.message_id == task.request_message_id
    assert photo.caption == t("result.caption", "zh", preset=t("preset.watercolor", "zh"))
    assert [data for row in photo.buttons for _, data in row] == [f"again:{task.id}", f"seed:{task.id}"]
    assert "allow_sending_without_reply" in str(photo_call.params.get("reply_parameters"))
    document = next(m.document for m in rig.fake.sent_messages(rig.chat.id) if m.document)
    assert rig.fake.file_bytes(document.file_id) == image  # untouched bytes
    status = rig.status_message(task)
    assert status.text == t("status.done", "zh", elapsed=0)


async def test_a_small_result_is_sent_as_a_photo_only(rig: Rig) -> None:
    task = await rig.task()
    await rig.notifier.deliver(task, jpeg(1000, 1000), lang="en")
    assert len(rig.fake.calls_to("sendPhoto", ok=True)) == 1
    assert rig.fake.calls_to("sendDocument") == []


async def test_a_timed_out_send_is_uncertain_and_never_resent(rig: Rig) -> None:
    task = await rig.task()
    rig.fake.answer_late("sendPhoto", 2.0)
    with pytest.raises(DeliveryUncertain):
        await rig.notifier.deliver(task, jpeg(800, 800), lang="en")
    assert len(rig.fake.calls_to("sendPhoto")) <= 1  # the late answer may not be recorded yet
    await rig.fake.wait_for(lambda: rig.fake.calls_to("sendPhoto") or None)
    assert len(rig.fake.calls_to("sendPhoto")) == 1


async def test_failed_sends_the_catalogue_text_and_stops_the_status(rig: Rig) -> None:
    task = await rig.task()
    await rig.notifier.failed(task, FriendlyError("error.image.too_small", values={"min_side": 128}), "en")
    reply = rig.fake.last_sent(rig.chat.id)
    assert reply is not None and reply.text == t("error.image.too_small", "en", min_side=128)
    assert reply.reply_to is not None and reply.reply_to.message_id == task.request_message_id
    status = rig.status_message(task)
    assert status.text == t("status.stopped", "en", elapsed=0)


async def test_an_unconfirmed_delivery_is_told_with_a_send_again_button(rig: Rig) -> None:
    task = await rig.task()
    await rig.notifier.unconfirmed(task, FriendlyError("error.delivery_uncertain", refund=False), "zh")
    note = rig.fake.last_sent(rig.chat.id)
    assert note is not None and note.text == t("error.delivery_uncertain", "zh")
    assert note.reply_to is not None and note.reply_to.message_id == task.request_message_id
    assert note.buttons == [[(t("button.send_again", "zh"), f"resend:{task.id}")]]
    assert rig.status_message(task).text == t("status.done", "zh", elapsed=0)  # the portrait was made


async def test_download_refuses_files_over_the_bot_api_limit(rig: Rig) -> None:
    small = rig.fake.store_document(jpeg(300, 300), "me.jpg", "image/jpeg")
    assert await rig.notifier.download(small.file_id) == small.source
    big = rig.fake.store_document(b"\xff\xd8" + b"0" * MAX_DOWNLOAD_BYTES, "big.jpg", "image/jpeg")
    with pytest.raises(ImageRejected) as caught:
        await rig.notifier.download(big.file_id)
    assert caught.value.reason == "too_large"


async def test_admin_alert_goes_to_the_admin_chat(rig: Rig) -> None:
    await rig.notifier.admin_alert("task 7 failed: auth")
    sent = rig.fake.last_sent(ADMIN_CHAT)
    assert sent is not None and sent.text == "task 7 failed: auth"


async def test_a_flood_of_one_alert_kind_is_summarised_not_repeated(rig: Rig) -> None:
    """Regression: every failing message of any sender reached the admin chat, so anyone could flood it."""
    for n in range(20):
        await rig.notifier.admin_alert(f"task {n} failed: 50400", kind="task:50400")
    await rig.notifier.admin_alert("bug in /quota", kind="handler:RuntimeError")  # another kind still goes
    assert [m.text for m in rig.fake.sent_messages(ADMIN_CHAT)] == [
        "task 0 failed: 50400", "bug in /quota",
    ]
    rig.clock.advance(rig.notifier.alerts._interval)
    await rig.notifier.admin_alert("task 21 failed: 50400", kind="task:50400")
    last = rig.fake.last_sent(ADMIN_CHAT)
    assert last is not None and last.text.startswith("task 21 failed: 50400")
    assert "+19 more" in last.text


@dataclass
class FakeChats:
    """The one storage call delivery makes (`store.chats.get`), for a group that wants private results."""

    private_in: set[int]

    async def get(self, chat_id: int) -> Chat | None:
        return Chat(chat_id, "group", "Friends", results_private=chat_id in self.private_in)


class FakeUsers:
    """`store.users.get`, which names a group result's requester: nobody is known here (no mention)."""

    async def get(self, user_id: int) -> None:
        return None


@dataclass
class FakeStore:
    chats: FakeChats
    users: FakeUsers = field(default_factory=FakeUsers)


def group_task(rig: Rig, group: FakeChat, user_id: int) -> Task:
    return make_task(rig.clock, id=9, user_id=user_id, chat_id=group.id, request_message_id=None,
                     status_message_id=None)


async def test_a_group_with_private_results_gets_them_in_the_requesters_private_chat(rig: Rig) -> None:
    group = rig.fake.group(-500, "Friends", admins=[rig.chat.id])
    notifier = TelegramNotifier(
        rig.bot, settings=rig.notifier._settings, clock=rig.clock,
        store=FakeStore(FakeChats({group.id})),  # type: ignore[arg-type]
    )
    await notifier.deliver(group_task(rig, group, rig.chat.id), jpeg(800, 800), lang="en")
    assert [m.photo != [] for m in rig.fake.sent_messages(rig.chat.id)] == [True]
    assert rig.fake.sent_messages(group.id) == []


async def test_private_results_fall_back_to_the_group_when_the_user_never_started_the_bot(rig: Rig) -> None:
    stranger = rig.fake.add_user(3003, "Stranger")  # no private chat with the bot
    group = rig.fake.group(-501, "Friends", admins=[stranger])
    notifier = TelegramNotifier(
        rig.bot, settings=rig.notifier._settings, clock=rig.clock,
        store=FakeStore(FakeChats({group.id})),  # type: ignore[arg-type]
    )
    file_id = await notifier.deliver(group_task(rig, group, stranger.id), jpeg(800, 800), lang="en")
    (photo,) = rig.fake.sent_messages(group.id)
    assert file_id in {size.file_id for size in photo.photo}


async def test_delivery_follows_a_group_that_became_a_supergroup(rig: Rig) -> None:
    group = rig.fake.group(-502, "Friends", admins=[rig.chat.id])
    rig.fake.migrate_group(group.id, -1000000000502)
    await rig.notifier.deliver(group_task(rig, group, rig.chat.id), jpeg(800, 800), lang="en")
    assert any(m.photo for m in rig.fake.sent_messages(-1000000000502))


async def test_the_full_size_document_can_be_requested_for_a_small_result(rig: Rig) -> None:
    task = await rig.task(params={"preset": "anime", "send_document": True})
    image = jpeg(1000, 1000)
    await rig.notifier.deliver(task, image, lang="en")
    (document,) = rig.fake.calls_to("sendDocument", ok=True)
    assert document.files and image in document.files.values()


async def test_results_finishing_together_in_a_group_go_out_one_after_another(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = rig.fake.group(-503, "Friends", admins=[rig.chat.id])
    at: list[tuple[str, float]] = []  # each call the fake received, with the bot's (fake) time
    record = rig.fake.record

    def timed(call: Any) -> None:
        at.append((call.method, rig.clock.now()))
        record(call)

    monkeypatch.setattr(rig.fake, "record", timed)
    tasks = [make_task(rig.clock, id=20 + i, chat_id=group.id, user_id=rig.chat.id) for i in range(5)]
    await asyncio.gather(*(rig.notifier.deliver(task, jpeg(800, 800), lang="en") for task in tasks))

    photos = rig.fake.calls_to("sendPhoto", chat_id=group.id)
    assert len(photos) == 5 and all(call.ok for call in photos)  # no 429, nothing lost
    times = [when - START for method, when in at if method == "sendPhoto"]
    assert times == pytest.approx([0.0, 0.0, 0.0, 1.0, 2.0])  # a short burst, then one a second


async def group_status_task(rig: Rig, chat_id: int) -> Task:
    group = rig.fake.group(chat_id, "Friends", admins=[rig.chat.id])
    status = await rig.bot.send_message(group.id, t("status.queued", "en", elapsed=0))
    return make_task(
        rig.clock, id=30, chat_id=group.id, user_id=rig.chat.id, status_message_id=status.message_id
    )


async def test_status_edits_in_a_group_wait_for_the_longer_group_interval(rig: Rig) -> None:
    task = await group_status_task(rig, -504)
    rig.clock.advance(4.0)  # past the 3 s a private chat waits, within a group's 10 s
    await rig.notifier.status(task, "in_queue", 4.0, lang="en")
    assert rig.edits() == []  # held: a private chat would have had it now
    await rig.fake.wait_for(lambda: rig.edits() or None)
    assert rig.edits() == [status_text("in_queue", "en", 4.0)]
    assert rig.clock.sleeps == [pytest.approx(6.0)]  # written at 10 s, not at 4 s


async def test_the_chat_action_in_a_group_is_repeated_less_often(rig: Rig) -> None:
    task = await group_status_task(rig, -505)
    for _ in range(3):  # 5 s apart: a private chat gets the action each time (it lasts ~5 s)
        await rig.notifier.status(task, "generating", 0.0, lang="en", final=True)
        rig.clock.advance(5.0)
    assert len(rig.fake.calls_to("sendChatAction", chat_id=task.chat_id)) == 2  # at 0 s and 10 s


async def test_a_rate_limited_send_is_a_try_later_and_nothing_is_sent(rig: Rig) -> None:
    """Regression: RetryAfter escaped deliver() and the runner ended the task as an unexpected error."""
    task = await rig.task()
    rig.fake.rate_limit("sendPhoto", times=1, retry_after=7)
    with pytest.raises(TryLater) as caught:
        await rig.notifier.deliver(task, jpeg(800, 800), lang="en")
    assert caught.value.retry_after == 7
    assert not any(m.photo for m in rig.fake.sent_messages(rig.chat.id))
    await rig.notifier.deliver(task, jpeg(800, 800), lang="en")  # later, it goes out
    assert len([m for m in rig.fake.sent_messages(rig.chat.id) if m.photo]) == 1


async def test_a_network_error_while_downloading_is_a_try_later(rig: Rig) -> None:
    small = rig.fake.store_document(jpeg(300, 300), "me.jpg", "image/jpeg")
    rig.fake.fail_next("getFile", ApiError(502, "Bad Gateway"))
    with pytest.raises(TryLater):
        await rig.notifier.download(small.file_id)
    assert await rig.notifier.download(small.file_id) == small.source


async def test_a_task_stopped_elsewhere_ends_its_status_message_on_stopped(rig: Rig) -> None:
    task = await rig.task()
    await rig.notifier.status(task, "stopped", 12.0, lang="en", final=True)
    assert rig.status_message(task).text == t("status.stopped", "en", elapsed=12)


async def test_the_sending_hook_runs_inside_the_chats_turn_just_before_the_photo(rig: Rig) -> None:
    """The runner's `sending` mark means "the photo may be out": it must not be written while delivery
    still waits for the chat's turn (a stop there would refund a photo never sent)."""
    task = await rig.task()
    marks: list[int] = []

    async def on_send() -> None:
        marks.append(len(rig.fake.calls_to("sendPhoto")))

    async with rig.notifier.pacer.turn(task.chat_id):  # another message to this chat is going out
        delivery = asyncio.create_task(rig.notifier.deliver(task, jpeg(800, 800), lang="en", on_send=on_send))
        for _ in range(20):
            await asyncio.sleep(0)
        assert marks == []
    await delivery
    assert marks == [0]  # once, before the sendPhoto request
    assert len(rig.fake.calls_to("sendPhoto", ok=True)) == 1


async def test_progress_state_stays_bounded_over_many_chats_and_tasks(rig: Rig) -> None:
    reporter = StatusReporter(rig.bot, interval=3.0, clock=rig.clock)
    for i in range(CHAT_ACTIONS_KEPT + 200):  # one generating task in each of many chats, over time
        task = make_task(rig.clock, id=i, chat_id=-(10**6) - i, status_message_id=None)
        await reporter.show(task, "generating", 1.0, lang="en")
        rig.clock.advance(1.0)
    assert len(reporter._actions) <= CHAT_ACTIONS_KEPT
