"""Edited messages are never acted on: fixing a typo in a command must not run it a second time."""

from __future__ import annotations

from pathlib import Path

from fake_telegram import FakeChat, FakeUser
from storage import RetryReason, TaskState
from tests.e2e.images import draw_selfie
from tests.e2e.test_admin_chat import ANN, BOB, meet, people, say
from tests.e2e.test_admin_harness import WAIT, Harness, running_bot
from tests.e2e.test_groups import eventually

CANCELLED = TaskState.CANCELLED


async def idle(h: Harness) -> None:
    """Every update fetched so far has been handled (with concurrent updates, a reply is not the end)."""
    processor = h.app.update_processor
    await h.fake.wait_for(
        lambda: (h.app.update_queue.empty() and processor.current_concurrent_updates == 0) or None, WAIT
    )


def bot_messages_after(h: Harness, chat: FakeChat, message_id: int) -> list[str]:
    return [m.body for m in h.fake.sent_messages(chat.id) if m.message_id > message_id]


async def test_an_edited_grant_is_not_granted_again(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as h:
        owner, *_ = await people(h)
        chat = h.fake.private_chat(owner)
        grant = h.fake.send_text(owner, chat, "/grant @ann 5")
        await h.fake.wait_for_message(chat, after=grant.message_id, timeout=WAIT)
        h.fake.edit_text(grant, "/grant @ann 5 contest prize")
        probe = await say(h, owner, "/quota @ann")
        await idle(h)
        assert "5 credits" in probe
        assert (await h.store.quotas.balance(ANN)).credits == 5
        assert [e.action for e in await h.store.admin.audit_log()] == ["grant"]
        assert [e.kind for e in await h.store.quotas.ledger(ANN)] == ["grant"]
        assert len(bot_messages_after(h, chat, grant.message_id)) == 2  # the grant's answer, the probe's


async def running_task(h: Harness, user: FakeUser, chat: FakeChat) -> tuple[int, int]:
    """(request message id, task id) of a fresh `/anime` that stays queued upstream."""
    request = h.fake.send_text(user, chat, "/anime")
    # Wait for the task itself: the first bot message after the request may be a late notice about an
    # earlier task (the runner tells the user about a cancellation after committing it).
    (task,) = await eventually(lambda: h.store.tasks.active_for_user(user.id), lambda tasks: len(tasks) == 1)
    return request.message_id, task.id


async def test_edited_anime_and_cancel_do_nothing(tmp_path: Path) -> None:
    # Every submit is refused for now, so the tasks wait to be sent again: still cancellable (a task the
    # service has accepted is not, it is billed).
    async with running_bot(tmp_path, fault_rate_429=1.0) as h:
        bob = await meet(h, BOB, "Bob", "bob")
        chat = h.fake.private_chat(bob)
        selfie = h.fake.send_photo(bob, chat, draw_selfie())
        await h.fake.wait_for_message(chat, after=selfie.message_id, timeout=WAIT)
        anime_id, first = await running_task(h, bob, chat)
        await eventually(
            lambda: h.store.tasks.get(first),
            lambda t: t is not None and t.retry_reason is RetryReason.RATE_LIMITED,
        )

        cancel = h.fake.send_text(bob, chat, "/cancel")
        await eventually(lambda: h.store.tasks.get(first), lambda t: t is not None and t.state == CANCELLED)
        _, second = await running_task(h, bob, chat)

        h.fake.edit_text(h.fake.messages[(chat.id, anime_id)], "/anime smiling")
        h.fake.edit_text(cancel, "/cancel now")
        await say(h, bob, "/quota")  # answered after both edits were fetched
        await idle(h)
        tasks = await h.store.tasks.recent_for_user(BOB)
        assert [(t.id, t.state == CANCELLED) for t in tasks] == [(second, False), (first, True)]
