"""A ban through the fake Bot API: the banned user's running task stops with one clear message."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.replies import t
from storage import TaskState
from tests.e2e.images import draw_selfie
from tests.e2e.test_admin_harness import OWNER_ID, WAIT, running_bot

BOB = 1002


async def test_a_banned_users_running_task_ends_with_the_ban_text_only(tmp_path: Path) -> None:
    async with running_bot(tmp_path, queue_seconds=3600.0) as h:  # the task stays in the upstream queue
        owner = h.fake.add_user(OWNER_ID, "Olga", "olga")
        bob = h.fake.add_user(BOB, "Bob", "bob")
        await h.ask(owner, h.fake.private_chat(owner), "/start")
        chat = h.fake.private_chat(bob)
        request = h.fake.send_photo(bob, chat, draw_selfie(), caption="/anime")
        status = await h.fake.wait_for_message(chat, after=request.message_id, timeout=WAIT)
        (task,) = await h.store.tasks.active_for_user(BOB)
        # The service has it (the selfie was prepared at upload, so the submit follows at once): wait for
        # that, so what the ban settles does not depend on who wins a race.
        for _ in range(500):
            stored = await h.store.tasks.get(task.id)
            if stored is not None and stored.upstream_task_id:
                break
            await asyncio.sleep(0.01)

        await h.ask(owner, h.fake.private_chat(owner), "/ban @bob spam")

        stored = await h.store.tasks.get(task.id)
        assert stored is not None and stored.state is TaskState.CANCELLED
        assert (await h.store.quotas.balance(BOB)).free_left == 2  # spent: the service had accepted it
        after = [m for m in h.fake.sent_messages(chat.id) if m.message_id > request.message_id]
        assert [m.message_id for m in after] == [status.message_id, after[-1].message_id]
        notice = after[-1]
        assert notice.body == t("banned", "en")  # one message, the ban itself: no "cancelled" on top
        assert notice.reply_to is not None and notice.reply_to.message_id == request.message_id
        stopped = t("status.stopped", "en", elapsed=0).split("0")[0]  # "✖️ Stopped after "
        assert h.fake.messages[(chat.id, status.message_id)].body.startswith(stopped)
