"""store.timings: the learned poll timings survive a restart."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import pytest

from api_client.learning import PollingLearner
from api_client.polling import PollOutcome
from storage import Store

from .conftest import FakeClock
from .helpers import raw_rows

STATE = {"v": 1, "window": [[0.0, 5.2], [4.9, 5.4]], "recent": [[4.9, 5.4, "ok"]]}


async def test_save_then_load_gives_the_state_back(store: Store, clock: FakeClock) -> None:
    assert await store.timings.load() == {}
    await store.timings.save("1.00mp/full/s18", STATE)
    await store.timings.save("0.50mp/fast/s18", {"v": 1, "window": []})
    assert await store.timings.load() == {"1.00mp/full/s18": STATE, "0.50mp/fast/s18": {"v": 1, "window": []}}


async def test_save_replaces_and_stamps_the_time(store: Store, clock: FakeClock) -> None:
    await store.timings.save("b", STATE)
    clock.advance(60)
    await store.timings.save("b", {"v": 1, "window": [[0.0, 3.0]]})
    assert await store.timings.load() == {"b": {"v": 1, "window": [[0.0, 3.0]]}}
    rows = await raw_rows(store, "SELECT bucket, updated_at FROM generation_timings")
    assert rows == [("b", clock.t)]


async def test_a_save_is_not_fsynced(store: Store) -> None:
    """Losing the last saves on power loss only costs a little learning: no fsync for them."""
    db = store._ctx.db
    commits, durable = db.commits, db.durable_commits
    await store.timings.save("b", STATE)
    assert (db.commits - commits, db.durable_commits - durable) == (1, 0)


async def test_forget_one_or_all(store: Store) -> None:
    for bucket in ("a", "b", "c"):
        await store.timings.save(bucket, STATE)
    assert await store.timings.forget("b") == 1
    assert sorted(await store.timings.load()) == ["a", "c"]
    assert await store.timings.forget() == 2
    assert await store.timings.load() == {}


async def test_refuses_what_it_could_not_give_back(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.timings.save("", STATE)
    with pytest.raises(ValueError):  # NaN is not JSON
        await store.timings.save("b", {"v": 1, "x": float("nan")})
    assert await store.timings.load() == {}


async def test_a_learner_keeps_what_it_learned_across_a_restart(
    migrated_path: Path, clock: FakeClock
) -> None:
    """The wiring the bot uses: PollingLearner.open(store.timings), learn, flush at stop, close, open
    again."""
    request = {"width": 1000, "height": 1000, "hyper_switch": False}
    async with await Store.open(migrated_path, clock=clock) as store:
        learner = await PollingLearner.open(store.timings)
        for done_by in (5.25, 4.5, 6.0, 5.25, 4.5):
            schedule = learner.schedule(request)
            assert schedule.on_finished is not None
            await schedule.finished(PollOutcome(pending_until=done_by - 0.75, done_by=done_by, polls=3))
        before = learner.schedule(request)
        await learner.flush()
    async with await Store.open(migrated_path, clock=clock) as store:
        after = (await PollingLearner.open(store.timings)).schedule(request)
    assert after.times and after.times == before.times  # the same plan, not the fixed fallback
    assert 4.5 < after.times[0] < 6.5


async def test_an_unreadable_saved_state_starts_that_bucket_afresh(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    await store.timings.save("1.00mp/full/s18", {"v": 99})
    await store.timings.save("0.50mp/full/s18", STATE)
    learner = await PollingLearner.open(store.timings)
    assert sorted(learner.model.buckets) == ["0.50mp/full/s18"]
    assert "ignoring the saved poll timings of 1.00mp/full/s18" in caplog.text


async def test_the_table_comes_with_the_migrations(db_path: Path, clock: FakeClock) -> None:
    async with await Store.open(db_path, clock=clock) as store:
        await store.timings.save("b", STATE)
    async with aiosqlite.connect(db_path) as conn:
        names = [r[0] for r in await conn.execute_fetchall("SELECT name FROM schema_version")]
    assert "generation_timings" in names
