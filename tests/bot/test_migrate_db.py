"""`portrait-bot admin migrate-db`: a running bot's SQLite data, copied to PostgreSQL with its ids, its
sequences and a clean ledger on both sides; a target that holds data is refused."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path
from typing import Any

from bot.admin.cli import EXIT_OK, EXIT_USAGE, run_admin
from storage import NewTask, Store, TaskState
from tests.pg import postgres_or_skip, temporary_schema

ZONE = "Asia/Shanghai"


def admin(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    real_err, sys.stderr = sys.stderr, err
    try:
        code = run_admin(list(argv), stdout=out, env={"QUOTA_TIMEZONE": ZONE})
    finally:
        sys.stderr = real_err
    return code, out.getvalue(), err.getvalue()


async def seed(path: Path) -> None:
    """Some of everything: users, a group, credits, a default allowance, tasks in several states (one of
    them purged, so its id lives on only in the ledger), a payment and its refund, a referral, timings."""
    clock = iter(range(1_800_000_000, 1_900_000_000, 60))
    async with await Store.open(path, quota_timezone=ZONE, clock=lambda: float(next(clock))) as s:
        for uid, name in ((1, "ann"), (2, "bob"), (3, "cy")):
            await s.users.upsert_seen(uid, username=name, first_name=name.title(), language_code="en")
        await s.chats.upsert(-100123, type="supergroup", title="G")
        await s.chats.update_settings(-100123, daily_cap=5, actor=1)
        await s.quotas.set_daily(None, 4, actor=9, reason="launch")
        await s.quotas.grant(1, 5, actor=9, reason="welcome")
        ids = []
        for n in range(4):
            task, _ = await s.tasks.create(
                NewTask(1, -100123, f"k{n}", n, "face", None, max_active_per_user=9)
            )
            ids.append(task.id)
        await s.tasks.transition(ids[0], TaskState.CANCELLED)
        for state in (TaskState.SUBMITTING, TaskState.SUBMITTED):
            await s.tasks.transition(ids[1], state, upstream_task_id="up-1")
        assert await s.tasks.claim(ids[1], "bot-1", 600)
        await s.tasks.transition(ids[3], TaskState.FAILED)
        await s.privacy.forget_user(3)
        await s.payments.record("ch-1", user_id=2, credits=10, stars=50, currency="XTR", payload="p")
        await s.payments.refund("ch-1", actor=9, reason="asked")
        await s.payments.record("ch-2", user_id=2, credits=10, stars=50, currency="XTR", payload="p")
        code = await s.referrals.code_for(1)
        await s.users.upsert_seen(4, username="dee", first_name="Dee", language_code="zh")
        await s.referrals.claim(4, code, bonus=2, first_update=True)
        await s.timings.save("1.00mp/full/s18", {"v": 1})
        last, _ = await s.tasks.create(NewTask(2, 2, "last", 1, "face", None))
        await s.tasks.transition(last.id, TaskState.FAILED)
        await s.privacy.purge_finished(1, actor=9)  # the newest task id is now only in the ledger
        assert (await s.quotas.check()).ok


async def snapshot(target: str | Path) -> dict[str, Any]:
    async with await Store.open(target, read_only=True) as s:
        return {
            "users": await s.users.list(),
            "balances": [await s.quotas.balance(u) for u in (1, 2, 3, 4)],
            "ledger": [await s.quotas.ledger(u, limit=100) for u in (1, 2, 3, 4)],
            "tasks": [await s.tasks.recent_for_user(u, limit=100) for u in (1, 2)],
            "payments": await s.payments.for_user(2),
            "chat": await s.chats.get(-100123),
            "timings": await s.timings.load(),
            "audit": await s.admin.audit_log(limit=100),
            "zone": s.quota_timezone,
            "invited": await s.referrals.invited_count(1),
        }


def test_migrate_db_copies_everything_and_refuses_a_full_target(tmp_path: Path) -> None:
    postgres_or_skip()
    path = tmp_path / "bot.db"
    asyncio.run(seed(path))

    async def scenario() -> None:
        async with temporary_schema() as url:
            code, out, err = await asyncio.to_thread(
                admin, "migrate-db", "--from", f"sqlite:///{path}", "--to", url
            )
            assert code == EXIT_OK, err
            assert "ledger check clean on both sides" in out and "tasks 2," in out
            assert await snapshot(url) == await snapshot(path)
            async with await Store.open(url, quota_timezone=ZONE) as pg:  # the copy carries on as the bot
                task, _ = await pg.tasks.create(NewTask(2, 2, "after", 1, "face", None))
                async with pg._ctx.db.read() as r:
                    assert task.id > await r.value(
                        "SELECT MAX(task_id) FROM ledger WHERE task_id < ?", (task.id,)
                    )
                assert (await pg.quotas.check()).ok
            code, _, err = await asyncio.to_thread(admin, "migrate-db", "--from", str(path), "--to", url)
            assert code == EXIT_USAGE and "not empty" in err

    asyncio.run(scenario())
