"""Chats: upsert, audited settings, active flag, supergroup migration keeping settings and tasks."""

from __future__ import annotations

import pytest

from storage import NO_CAP, Chat, NotFound, Store

from .conftest import add_user, new_task


async def test_upsert_and_get(store: Store) -> None:
    chat = await store.chats.upsert(-1, type="group", title="Old name")
    assert chat == Chat(id=-1, type="group", title="Old name")
    renamed = await store.chats.upsert(-1, type="group", title="New name")
    assert renamed.title == "New name" and await store.chats.get(-1) == renamed
    assert await store.chats.get(-2) is None


async def test_update_settings_is_audited_and_cap_can_be_removed(store: Store) -> None:
    await store.chats.upsert(-1, type="group", title="G")
    chat = await store.chats.update_settings(-1, enabled=False, daily_cap=10, results_private=True, actor=5)
    assert (chat.enabled, chat.daily_cap, chat.results_private) == (False, 10, True)
    chat = await store.chats.update_settings(-1, enabled=True, actor=5)
    assert (chat.enabled, chat.daily_cap) == (True, 10)  # None leaves the cap alone
    chat = await store.chats.update_settings(-1, daily_cap=NO_CAP, actor=5)
    assert chat.daily_cap is None
    log = await store.admin.audit_log()
    assert [(e.action, e.target, e.actor) for e in log] == [("chat_settings", "-1", 5)] * 3
    assert "daily_cap=10" in log[2].details
    with pytest.raises(NotFound):
        await store.chats.update_settings(-9, enabled=True, actor=5)


async def test_set_active(store: Store) -> None:
    await store.chats.upsert(-1, type="group", title="G")
    await store.chats.set_active(-1, False)
    assert (await store.chats.get(-1)).active is False  # type: ignore[union-attr]
    await store.chats.set_active(-1, True)
    assert (await store.chats.get(-1)).active is True  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        await store.chats.set_active(-9, True)


@pytest.mark.parametrize("new_seen_first", [False, True])
async def test_migrate_to_supergroup_keeps_settings_and_tasks(store: Store, new_seen_first: bool) -> None:
    await add_user(store)
    await store.chats.upsert(-1, type="group", title="G")
    await store.chats.update_settings(-1, daily_cap=3, results_private=True, actor=5)
    task, _ = await store.tasks.create(new_task(chat_id=-1, charge_chat_id=-1))
    if new_seen_first:
        await store.chats.upsert(-100123, type="supergroup", title="G")
    chat = await store.chats.migrate(-1, -100123)
    assert chat == Chat(id=-100123, type="supergroup", title="G", daily_cap=3, results_private=True)
    assert await store.chats.get(-1) is None
    moved = await store.tasks.get(task.id)
    assert moved is not None and (moved.chat_id, moved.charge_chat_id) == (-100123, -100123)
    assert await store.chats.migrate(-1, -100123) == chat  # repeating is harmless
    with pytest.raises(NotFound):
        await store.chats.migrate(-7, -100777)
