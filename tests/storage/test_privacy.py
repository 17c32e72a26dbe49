"""Forgetting a user and purging old tasks: personal data goes, balances and the ledger check stay right."""

from __future__ import annotations

import pytest

from storage import HasActiveTasks, NotFound, Store, TaskState

from .conftest import FakeClock, add_user, new_task
from .helpers import drive, tamper

DAY = 86400.0


async def _history(store: Store, user_id: int = 1) -> None:
    """A user with images, a prompt, credits granted with a reason, and one done, one failed task."""
    await add_user(store, user_id)
    await store.users.update_settings(
        user_id, prompt="red scarf", selfie_file_id="selfie-id", style_file_id="style-id", preset="ghibli"
    )
    await store.quotas.grant(user_id, 4, actor=9, reason="prize for @alice")
    done, _ = await store.tasks.create(new_task(user_id, f"{user_id}:a"))
    await drive(store, done, TaskState.DONE)
    failed, _ = await store.tasks.create(new_task(user_id, f"{user_id}:b"))
    await drive(store, failed, TaskState.FAILED)


async def test_forget_deletes_personal_data_and_keeps_the_accounting(store: Store) -> None:
    await _history(store, 1)
    await _history(store, 2)
    before = await store.quotas.balance(1)

    result = await store.privacy.forget_user(1)

    assert (result.tasks_deleted, result.ledger_rows_anonymised) >= (2, 1)
    user = await store.users.get(1)
    assert user is not None and (user.username, user.first_name, user.language) == (None, "", None)
    settings = await store.users.get_settings(1)
    assert (settings.prompt, settings.selfie_file_id, settings.style_file_id, settings.preset) == (
        "", None, None, "anime",
    )  # fmt: skip
    assert await store.tasks.recent_for_user(1) == []
    assert await store.quotas.balance(1) == before  # the 4 credits and today's used unit stay
    ledger = await store.quotas.ledger(1, limit=100)
    assert {e.kind for e in ledger} >= {"grant", "reserve", "commit", "refund"}
    assert all(e.reason == "" for e in ledger)
    assert (await store.quotas.check()).ok
    # Nobody else is touched.
    assert len(await store.tasks.recent_for_user(2)) == 2
    assert (await store.users.get_settings(2)).prompt == "red scarf"
    assert any(e.reason == "prize for @alice" for e in await store.quotas.ledger(2))
    (entry, *_) = await store.admin.audit_log()
    assert (entry.action, entry.actor, entry.target) == ("forget", 1, "1")


async def test_a_forgotten_user_who_comes_back_starts_afresh(store: Store) -> None:
    await _history(store)
    await store.privacy.forget_user(1)
    await store.users.upsert_seen(1, username="alice2", first_name="A", language_code="zh")
    user = await store.users.get(1)
    assert user is not None and (user.username, user.language) == ("alice2", "zh")
    task, created = await store.tasks.create(new_task(1, "1:again"))
    assert created and task.id > 2  # ids are never reused, so old ledger rows cannot be mistaken for it
    assert (await store.quotas.check()).ok


async def test_forget_is_refused_while_a_task_is_unfinished_and_changes_nothing(store: Store) -> None:
    await _history(store)
    running, _ = await store.tasks.create(new_task(1, "1:run"))
    await drive(store, running, TaskState.POLLING)
    with pytest.raises(HasActiveTasks) as refused:
        await store.privacy.forget_user(1)
    assert refused.value.active == 1
    assert len(await store.tasks.recent_for_user(1)) == 3
    assert (await store.users.get_settings(1)).prompt == "red scarf"
    with pytest.raises(NotFound):
        await store.privacy.forget_user(404)


async def test_purge_deletes_only_old_finished_tasks(store: Store, clock: FakeClock) -> None:
    await add_user(store)
    await store.quotas.grant(1, 10, actor=9, reason="")
    old_done, _ = await store.tasks.create(new_task(max_active_per_user=5, key="old-done"))
    await drive(store, old_done, TaskState.DONE)
    old_cancelled, _ = await store.tasks.create(new_task(max_active_per_user=5, key="old-cancelled"))
    await drive(store, old_cancelled, TaskState.CANCELLED)
    old_running, _ = await store.tasks.create(new_task(max_active_per_user=5, key="old-running"))
    await drive(store, old_running, TaskState.POLLING)
    clock.advance(31 * DAY)
    recent, _ = await store.tasks.create(new_task(max_active_per_user=5, key="recent"))
    await drive(store, recent, TaskState.DONE)
    ledger_before = await store.quotas.ledger(1, limit=100)

    purged = await store.privacy.purge_finished(30 * DAY, actor=0, reason="retention")

    assert (purged.tasks_deleted, purged.by_state, purged.unfinished_kept) == (
        2, {"done": 1, "cancelled": 1}, 1,
    )  # fmt: skip
    left = {t.origin_key for t in await store.tasks.recent_for_user(1, limit=10)}
    assert left == {"old-running", "recent"}
    assert await store.quotas.ledger(1, limit=100) == ledger_before
    assert (await store.quotas.check()).ok
    assert (await store.tasks.transition(old_running.id, TaskState.FAILED)).reservation == "refunded"
    assert (await store.quotas.check()).ok
    audit = (await store.admin.audit_log())[0]
    assert audit.action == "purge"
    assert audit.details == "2 finished tasks older than 30 days deleted: retention"
    with pytest.raises(ValueError):
        await store.privacy.purge_finished(0, actor=0)


async def test_purge_works_in_batches(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage import privacy

    monkeypatch.setattr(privacy, "PURGE_BATCH", 2)
    await add_user(store)
    await store.quotas.grant(1, 10, actor=9, reason="")
    for n in range(5):
        task, _ = await store.tasks.create(new_task(key=f"t{n}"))
        await drive(store, task, TaskState.DONE)
    clock.advance(2 * DAY)
    assert (await store.privacy.purge_finished(DAY, actor=0)).tasks_deleted == 5
    assert await store.tasks.recent_for_user(1) == []
    assert (await store.quotas.check()).ok


async def test_check_flags_a_deleted_task_whose_unit_was_never_settled(store: Store) -> None:
    """A task may only disappear once settled: one that vanished while holding its unit is a lost unit."""
    await add_user(store)
    held, _ = await store.tasks.create(new_task(key="held"))
    await tamper(store, ("DELETE FROM tasks WHERE id = ?", (held.id,)))
    check = await store.quotas.check()
    assert not check.ok
    assert f"task {held.id}: deleted, but its ledger rows do not show it settled" in check.problems


async def test_check_flags_a_deleted_task_with_a_doctored_refund(store: Store) -> None:
    await add_user(store)
    task, _ = await store.tasks.create(new_task(key="t"))
    await drive(store, task, TaskState.FAILED)
    await tamper(store, ("DELETE FROM tasks WHERE id = ?", (task.id,)))
    assert (await store.quotas.check()).ok  # settled, so deleting it is fine
    await tamper(store, ("UPDATE ledger SET free = 0 WHERE task_id = ? AND kind = 'refund'", (task.id,)))
    problems = (await store.quotas.check()).problems
    assert f"task {task.id}: deleted, but its ledger rows do not show it settled" in problems
