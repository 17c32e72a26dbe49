"""What the dispatcher reads (light queue entries over the unfinished index) and the commit-saving writes:
a move that takes the lease, stores poll_started_at / delivery with it, and commits without fsync."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from storage import Delivery, LeaseLost, Store
from storage import TaskState as S

from .conftest import ZONE, FakeClock, add_user, new_task

LEASE = 90.0


async def test_queue_entries_and_next_runnable_in_creation_order(store: Store, clock: FakeClock) -> None:
    ids = []
    for n in range(1, 6):
        await add_user(store, n, f"user{n}")
        task, _ = await store.tasks.create(new_task(n, key=f"k{n}"))
        ids.append(task.id)
        clock.advance(1)
    await store.tasks.transition(ids[4], S.SUBMITTING)
    await store.tasks.transition(ids[4], S.SUBMITTED, upstream_task_id="u5")
    await store.tasks.transition(ids[3], S.CANCELLED)
    assert await store.tasks.claim(ids[0], "worker-b", LEASE)  # another worker's live lease
    await store.tasks.update(ids[1], next_poll_at=clock.t + 30)  # backing off

    entries = await store.tasks.queue_entries()
    assert [e.id for e in entries] == [ids[0], ids[1], ids[2], ids[4]]
    assert [e.state for e in entries] == [S.QUEUED, S.QUEUED, S.QUEUED, S.SUBMITTED]
    assert await store.tasks.next_runnable(10, owner="worker-a") == [entries[2], entries[3]]
    assert [e.id for e in await store.tasks.next_runnable(1, owner="worker-b")] == [ids[0]]


async def test_a_move_can_take_the_lease_and_store_its_marks_in_one_commit(
    store: Store, clock: FakeClock
) -> None:
    await add_user(store)
    task, _ = await store.tasks.create(new_task())
    db = store._ctx.db
    commits = db.commits
    moved = await store.tasks.transition(
        task.id, S.SUBMITTING, expect=S.QUEUED, owner="worker-a", lease_seconds=LEASE
    )
    assert (moved.lease_owner, moved.lease_until) == ("worker-a", clock.t + LEASE)
    submitted = await store.tasks.transition(
        task.id, S.SUBMITTED, expect=S.SUBMITTING, owner="worker-a", upstream_task_id="u1",
        poll_started_at=clock.t + 1,
    )  # fmt: skip
    assert submitted.poll_started_at == clock.t + 1
    delivering = await store.tasks.transition(
        task.id, S.DELIVERING, expect=S.SUBMITTED, owner="worker-a", delivery=Delivery.SENDING
    )
    assert delivering.delivery is Delivery.SENDING
    durable = db.durable_commits
    done = await store.tasks.transition(
        task.id, S.DONE, expect=S.DELIVERING, owner="worker-a", result_file_id="p", durable=False
    )
    assert done.lease_owner is None and db.durable_commits == durable and db.commits - commits == 4


async def test_taking_the_lease_in_a_move_respects_another_workers_live_lease(
    store: Store, clock: FakeClock
) -> None:
    await add_user(store)
    task, _ = await store.tasks.create(new_task())
    assert await store.tasks.claim(task.id, "worker-b", LEASE)
    with pytest.raises(LeaseLost):
        await store.tasks.transition(
            task.id, S.SUBMITTING, expect=S.QUEUED, owner="worker-a", lease_seconds=LEASE
        )
    clock.advance(LEASE + 1)  # B's lease ran out: A may take it with the move
    moved = await store.tasks.transition(
        task.id, S.SUBMITTING, expect=S.QUEUED, owner="worker-a", lease_seconds=LEASE
    )
    assert moved.lease_owner == "worker-a"


async def test_claims_and_releases_are_not_fsynced(store: Store) -> None:
    await add_user(store)
    task, _ = await store.tasks.create(new_task())
    db = store._ctx.db
    durable = db.durable_commits
    assert await store.tasks.claim(task.id, "worker-a", LEASE)
    await store.tasks.release(task.id, "worker-a")
    assert db.durable_commits == durable


async def test_a_commit_without_fsync_leaves_the_connection_fully_synchronous(migrated_path: Path) -> None:
    store = await Store.open(migrated_path, quota_timezone=ZONE)  # synchronous=FULL, the default
    try:
        await add_user(store)
        task, _ = await store.tasks.create(new_task())
        await store.tasks.update(task.id, status_message_id=5, durable=False)
        async with store._ctx.db.transaction() as tx:
            assert await tx.value("PRAGMA synchronous") == 2  # FULL again for the durable writes after it
        assert (await store.tasks.get(task.id)).status_message_id == 5  # type: ignore[union-attr]
    finally:
        await store.close()


def _count_hops(db: object, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every call to the SQLite threads of `db`'s two writer connections, as they happen."""
    hops: list[object] = []
    for conn in {id(c): c for c in (db.writer, db._relaxed)}.values():  # type: ignore[attr-defined]
        real = conn._execute

        async def counted(fn: object, *args: object, _real: Any = real, **kwargs: object) -> object:
            hops.append(fn)
            return await _real(fn, *args, **kwargs)

        monkeypatch.setattr(conn, "_execute", counted)
    return hops


async def test_each_commit_runs_under_its_own_setting_and_alternating_costs_no_extra_hop(
    migrated_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relaxed and durable transactions alternate in the bot: each goes to a writer connection already set
    the way it needs (switching one connection's setting cost a hop per switch)."""
    store = await Store.open(migrated_path, quota_timezone=ZONE)  # synchronous=FULL, the default
    try:
        db = store._ctx.db
        hops = _count_hops(db, monkeypatch)
        seen = []
        for durable in (False, False, True, False, True, True):
            hops.clear()
            async with db.transaction(durable=durable) as tx:
                seen.append(await tx.value("PRAGMA synchronous"))
            assert len(hops) == 3, durable  # BEGIN, the statement, COMMIT
        assert seen == [1, 1, 2, 1, 2, 2]  # NORMAL for the relaxed commits, FULL for the durable ones
    finally:
        await store.close()


async def test_a_one_statement_write_is_one_hop_under_its_own_setting(
    migrated_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`write_one` runs the statement alone (SQLite's autocommit), one hop on the writer set the way it
    needs; counted as a commit, durable or not."""
    store = await Store.open(migrated_path, quota_timezone=ZONE)  # synchronous=FULL, the default
    try:
        await add_user(store, 1, "alice")
        task, _ = await store.tasks.create(new_task(1, key="k1"))
        db = store._ctx.db
        hops = _count_hops(db, monkeypatch)
        per_write = []
        commits, durable_commits = db.commits, db.durable_commits
        for n, durable in enumerate((False, False, True, False, True, True)):
            hops.clear()
            rows = await db.write_one(
                "UPDATE tasks SET attempts = ? WHERE id = ? RETURNING attempts", (n, task.id), durable=durable
            )
            assert [row[0] for row in rows] == [n]
            per_write.append(len(hops))
        assert per_write == [1] * 6
        assert (db.commits - commits, db.durable_commits - durable_commits) == (6, 3)
        assert (await store.tasks.get(task.id)).attempts == 5  # type: ignore[union-attr]
        with pytest.raises(ValueError):
            await db.write_one("SELECT 1")
    finally:
        await store.close()


async def test_the_two_writers_keep_their_settings_and_see_each_others_commits(migrated_path: Path) -> None:
    store = await Store.open(migrated_path, quota_timezone=ZONE)
    try:
        db = store._ctx.db
        settings = [
            tuple(await (await conn.execute("PRAGMA synchronous")).fetchone())  # type: ignore[arg-type]
            for conn in (db.writer, db._relaxed)  # type: ignore[attr-defined]
        ]
        assert settings == [(2,), (1,)]  # FULL, NORMAL
        await add_user(store, 1, "alice")
        task, _ = await store.tasks.create(new_task(1, key="k1"))  # durable
        await store.tasks.update(task.id, status_message_id=7, durable=False)
        moved = await store.tasks.transition(task.id, S.SUBMITTING)  # durable, after a relaxed write
        assert moved.status_message_id == 7
    finally:
        await store.close()


async def test_migrations_commit_under_the_configured_setting_after_a_relaxed_write(
    migrated_path: Path,
) -> None:
    store = await Store.open(migrated_path, quota_timezone=ZONE)
    try:
        db = store._ctx.db
        async with db.transaction(durable=False):
            pass
        await db.migrate(now=0.0)
        row = await (await db.writer.execute("PRAGMA synchronous")).fetchone()  # type: ignore[attr-defined]
        assert tuple(row) == (2,)  # FULL
    finally:
        await store.close()
