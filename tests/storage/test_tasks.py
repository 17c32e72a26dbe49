"""Tasks: creation with its reservation, the state machine, the quota effect of each move, leases."""

from __future__ import annotations

import itertools

import pytest

from storage import (
    ALLOWED,
    TERMINAL,
    GroupCapReached,
    IllegalTransition,
    NotFound,
    QuotaExhausted,
    Store,
    TaskState,
    TooManyActiveTasks,
)

from .conftest import FakeClock, add_user, new_task
from .helpers import PATH, drive

S = TaskState
ILLEGAL = [(a, b) for a, b in itertools.product(S, S) if a != b and b not in ALLOWED[a]]
LEGAL = [(a, b) for a in S for b in sorted(ALLOWED[a])]


async def test_create_reserves_one_free_unit_bound_to_the_task(store: Store) -> None:
    await add_user(store)
    task, created = await store.tasks.create(new_task(params={"seed": 7, "prompt": "p"}))
    assert created
    assert (task.state, task.user_id, task.origin_key, task.params) == (
        S.QUEUED,
        1,
        "k1",
        {"seed": 7, "prompt": "p"},
    )
    assert (task.quota_unit, task.reservation) == ("free", "held")
    balance = await store.quotas.balance(1)
    assert (balance.free_used_today, balance.free_left) == (1, 1)
    [entry] = await store.quotas.ledger(1)
    assert (entry.kind, entry.task_id, entry.free, entry.credits) == ("reserve", task.id, 1, 0)
    assert await store.tasks.get(task.id) == task


async def test_free_units_are_spent_before_credits_then_quota_is_exhausted(store: Store) -> None:
    await add_user(store)
    await store.quotas.grant(1, 1, actor=99, reason="gift")
    units = []
    for i in range(3):
        task, _ = await store.tasks.create(new_task(key=f"k{i}", max_active_per_user=10))
        units.append(task.quota_unit)
    assert units == ["free", "free", "credits"]
    with pytest.raises(QuotaExhausted) as info:
        await store.tasks.create(new_task(key="k9", max_active_per_user=10))
    assert info.value.resets_at == (await store.quotas.balance(1)).resets_at
    assert len(await store.tasks.active_for_user(1)) == 3
    assert (await store.quotas.balance(1)).credits == 0


async def test_duplicate_origin_key_returns_existing_task_without_second_reservation(store: Store) -> None:
    await add_user(store)
    first, created = await store.tasks.create(new_task(key="chat:1:msg:5"))
    again, created_again = await store.tasks.create(new_task(key="chat:1:msg:5", max_active_per_user=1))
    assert (created, created_again) == (True, False)
    assert again == first
    assert (await store.quotas.balance(1)).free_used_today == 1
    assert [e.kind for e in await store.quotas.ledger(1)] == ["reserve"]


async def test_active_limit_per_user(store: Store) -> None:
    await add_user(store)
    first, _ = await store.tasks.create(new_task(key="a"))
    with pytest.raises(TooManyActiveTasks) as info:
        await store.tasks.create(new_task(key="b"))
    assert (info.value.active, info.value.limit) == (1, 1)
    assert (await store.quotas.balance(1)).free_used_today == 1  # the refusal reserved nothing
    await drive(store, first, S.DONE)
    second, created = await store.tasks.create(new_task(key="b"))
    assert created and second.state == S.QUEUED


async def test_group_daily_cap_counts_unrefunded_tasks_until_local_midnight(
    store: Store, clock: FakeClock
) -> None:
    for uid in (1, 2, 3):
        await add_user(store, uid, f"u{uid}")
    await store.chats.upsert(-100, type="supergroup", title="G")
    await store.chats.update_settings(-100, daily_cap=2, actor=1)
    a, _ = await store.tasks.create(new_task(1, "a", chat_id=-100, charge_chat_id=-100))
    await store.tasks.create(new_task(2, "b", chat_id=-100, charge_chat_id=-100))
    with pytest.raises(GroupCapReached) as info:
        await store.tasks.create(new_task(3, "c", chat_id=-100, charge_chat_id=-100))
    assert info.value.cap == 2
    assert (await store.quotas.balance(3)).free_used_today == 0
    # A refunded task gives its place in the cap back.
    await store.tasks.transition(a.id, S.CANCELLED)
    c, _ = await store.tasks.create(new_task(3, "c", chat_id=-100, charge_chat_id=-100))
    with pytest.raises(GroupCapReached):
        await store.tasks.create(new_task(1, "d", chat_id=-100, charge_chat_id=-100))
    # Other chats are not capped; the cap resets at Shanghai midnight (14 h after 10:00).
    await store.tasks.create(new_task(1, "e", chat_id=-200, charge_chat_id=-200))
    clock.advance(14 * 3600)
    await drive(store, c, S.FAILED)
    _, created = await store.tasks.create(new_task(3, "f", chat_id=-100, charge_chat_id=-100))
    assert created


async def test_create_for_unknown_user_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.tasks.create(new_task(user_id=404))


@pytest.mark.parametrize(("current", "to"), LEGAL, ids=lambda s: str(s))
async def test_every_allowed_transition(store: Store, current: TaskState, to: TaskState) -> None:
    await add_user(store)
    task = await drive(store, (await store.tasks.create(new_task()))[0], current)
    moved = await store.tasks.transition(task.id, to, expect=current, upstream_task_id="up")
    assert moved.state == to
    assert (moved.finished_at is not None) == (to in TERMINAL)
    assert (await store.quotas.check()).ok


@pytest.mark.parametrize(("current", "to"), ILLEGAL, ids=lambda s: str(s))
async def test_every_illegal_transition_raises_and_changes_nothing(
    store: Store, current: TaskState, to: TaskState
) -> None:
    await add_user(store)
    task = await drive(store, (await store.tasks.create(new_task()))[0], current)
    ledger_before = await store.quotas.ledger(1)
    with pytest.raises(IllegalTransition) as info:
        await store.tasks.transition(task.id, to, upstream_task_id="up")
    assert (info.value.current, info.value.to) == (current, to)
    assert await store.tasks.get(task.id) == task
    assert await store.quotas.ledger(1) == ledger_before


def test_illegal_pairs_cover_everything_not_allowed() -> None:
    assert len(ILLEGAL) + len(LEGAL) + len(S) == len(S) ** 2
    assert all(not ALLOWED[t] for t in TERMINAL)


async def test_expect_mismatch_is_illegal(store: Store) -> None:
    await add_user(store)
    task = await drive(store, (await store.tasks.create(new_task()))[0], S.POLLING)
    with pytest.raises(IllegalTransition) as info:
        await store.tasks.transition(task.id, S.DELIVERING, expect=S.SUBMITTED)
    assert info.value.expected == S.SUBMITTED
    assert (await store.tasks.get(task.id)) == task


async def test_done_commits_exactly_once_even_if_repeated(store: Store) -> None:
    await add_user(store)
    task = await drive(store, (await store.tasks.create(new_task()))[0], S.DELIVERING)
    done = await store.tasks.transition(task.id, S.DONE, result_file_id="res-1")
    again = await store.tasks.transition(task.id, S.DONE, result_file_id="res-2")
    assert again == done and done.result_file_id == "res-1" and done.reservation == "committed"
    assert [e.kind for e in await store.quotas.ledger(1)] == ["commit", "reserve"]
    assert (await store.quotas.balance(1)).free_used_today == 1
    with pytest.raises(IllegalTransition):
        await store.tasks.transition(task.id, S.FAILED)  # a committed unit is never refunded afterwards


@pytest.mark.parametrize("terminal", [S.FAILED, S.CANCELLED, S.EXPIRED])
async def test_refund_exactly_once_even_if_repeated(store: Store, terminal: TaskState) -> None:
    await add_user(store)
    await store.quotas.grant(1, 5, actor=9, reason="r")
    await store.quotas.set_daily(1, 0, actor=9, reason="credits only")
    task = await drive(store, (await store.tasks.create(new_task()))[0], S.SUBMITTED)
    assert (await store.quotas.balance(1)).credits == 4
    first = await store.tasks.transition(task.id, terminal, error_code="50500")
    second = await store.tasks.transition(task.id, terminal, error_code="other")
    assert first == second and first.error_code == "50500" and first.reservation == "refunded"
    assert (await store.quotas.balance(1)).credits == 5
    assert [e.kind for e in await store.quotas.ledger(1, limit=2)] == ["refund", "reserve"]
    assert (await store.quotas.check()).ok


async def test_stuck_submitting_task_fails_as_submit_unknown_and_is_refunded(store: Store) -> None:
    await add_user(store)
    task = await drive(store, (await store.tasks.create(new_task()))[0], S.SUBMITTING)
    [stuck] = await store.tasks.unfinished()
    assert stuck.id == task.id and stuck.upstream_task_id is None
    failed = await store.tasks.transition(
        stuck.id, S.FAILED, expect=S.SUBMITTING, error_code="submit_unknown"
    )
    assert (failed.state, failed.error_code, failed.reservation) == (S.FAILED, "submit_unknown", "refunded")
    assert (await store.quotas.balance(1)).free_used_today == 0
    assert await store.tasks.unfinished() == []
    with pytest.raises(IllegalTransition):  # never resubmitted
        await store.tasks.transition(task.id, S.SUBMITTED, upstream_task_id="late")


async def test_submitted_needs_an_upstream_task_id(store: Store) -> None:
    await add_user(store)
    task = await drive(store, (await store.tasks.create(new_task()))[0], S.SUBMITTING)
    with pytest.raises(ValueError, match="upstream"):
        await store.tasks.transition(task.id, S.SUBMITTED)
    moved = await store.tasks.transition(task.id, S.SUBMITTED, upstream_task_id="7392616336519610409")
    assert moved.upstream_task_id == "7392616336519610409"


async def test_refund_after_midnight_returns_the_unit_to_its_own_day(store: Store, clock: FakeClock) -> None:
    await add_user(store)
    task = await drive(store, (await store.tasks.create(new_task()))[0], S.POLLING)
    clock.advance(15 * 3600)  # past Shanghai midnight
    await store.tasks.create(new_task(key="k2", max_active_per_user=5))
    await store.tasks.transition(task.id, S.EXPIRED)
    balance = await store.quotas.balance(1)
    assert (balance.free_used_today, balance.free_left) == (1, 1)  # today's use unchanged
    assert (await store.quotas.check()).ok


async def test_transition_unknown_task_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.tasks.transition(404, S.FAILED)
    with pytest.raises(NotFound):
        await store.tasks.update(404, attempts_inc=True)
    with pytest.raises(NotFound):
        await store.tasks.claim(404, "w", 10)
    assert await store.tasks.get(404) is None


async def test_update_bookkeeping_fields(store: Store, clock: FakeClock) -> None:
    await add_user(store)
    task, _ = await store.tasks.create(new_task())
    clock.advance(5)
    t = await store.tasks.update(
        task.id, status_message_id=77, next_poll_at=clock.t + 3, last_status="in_queue"
    )
    t = await store.tasks.update(task.id, attempts_inc=True)
    t = await store.tasks.update(task.id, attempts_inc=True, last_status="generating")
    assert (t.status_message_id, t.next_poll_at, t.attempts, t.last_status) == (
        77,
        clock.t + 3,
        2,
        "generating",
    )
    assert t.updated_at == clock.t and t.state == S.QUEUED


async def test_unfinished_active_and_recent(store: Store, clock: FakeClock) -> None:
    await add_user(store, 1)
    await add_user(store, 2, "bob")
    ids = {}
    for n, (uid, target) in enumerate([(1, S.DONE), (2, S.POLLING), (1, S.SUBMITTING), (2, S.CANCELLED)]):
        clock.advance(1)
        task, _ = await store.tasks.create(new_task(uid, f"k{n}", max_active_per_user=5))
        ids[n] = (await drive(store, task, target)).id
    assert [t.id for t in await store.tasks.unfinished()] == [ids[1], ids[2]]
    assert [t.id for t in await store.tasks.active_for_user(2)] == [ids[1]]
    assert [t.id for t in await store.tasks.recent_for_user(1)] == [ids[2], ids[0]]
    assert [t.id for t in await store.tasks.recent_for_user(1, limit=1)] == [ids[2]]


async def test_leases(store: Store, clock: FakeClock) -> None:
    await add_user(store)
    task, _ = await store.tasks.create(new_task())
    assert await store.tasks.claim(task.id, "worker-a", 30)
    assert not await store.tasks.claim(task.id, "worker-b", 30)
    assert await store.tasks.claim(task.id, "worker-a", 60)  # the owner extends
    held = await store.tasks.get(task.id)
    assert held is not None and (held.lease_owner, held.lease_until) == ("worker-a", clock.t + 60)
    clock.advance(61)
    assert await store.tasks.claim(task.id, "worker-b", 30)  # expired lease is taken over
    await store.tasks.release(task.id, "worker-a")  # not the holder: no effect
    assert (await store.tasks.get(task.id)).lease_owner == "worker-b"  # type: ignore[union-attr]
    await store.tasks.release(task.id, "worker-b")
    assert await store.tasks.claim(task.id, "worker-c", 30)
    done = await drive(store, task, S.FAILED)
    assert (done.lease_owner, done.lease_until) == (None, None)  # terminal moves drop the lease
    assert not await store.tasks.claim(task.id, "worker-c", 30)  # finished tasks cannot be claimed


def test_path_table_reaches_every_state() -> None:
    assert set(PATH) == set(S)


async def test_repeating_a_non_terminal_move_is_a_no_op(store: Store, clock: FakeClock) -> None:
    await add_user(store)
    task = await drive(store, (await store.tasks.create(new_task()))[0], S.POLLING)
    clock.advance(10)
    again = await store.tasks.transition(task.id, S.POLLING)
    assert again == task  # nothing rewritten, not even updated_at


async def test_a_stale_expect_is_refused_even_when_the_task_is_already_there(store: Store) -> None:
    """Regression: `transition(SUBMITTING, expect=QUEUED)` on a task another worker had already moved to
    submitting returned quietly, and the stale worker went on to submit a second time."""
    await add_user(store)
    task, _ = await store.tasks.create(new_task())
    await store.tasks.transition(task.id, S.SUBMITTING, expect=S.QUEUED)
    with pytest.raises(IllegalTransition):
        await store.tasks.transition(task.id, S.SUBMITTING, expect=S.QUEUED)
