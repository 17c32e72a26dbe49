"""Two live processes with one WORKER_ID on one database would drive the same tasks: the second refuses."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.jobs import worker_lock
from bot.jobs.worker_lock import WorkerLock, WorkerLockHeld, held_here, lock_path, running_ids
from fake_telegram import FakeTelegram, serve
from storage.pg_worker_lock import PgWorkerLock
from tests.pg import postgres_or_skip, temporary_schema

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_holder_of_the_same_worker_id_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    with WorkerLock(db, "host-a"):
        with pytest.raises(WorkerLockHeld, match="WORKER_ID=host-a"):
            WorkerLock(db, "host-a").acquire()
        with WorkerLock(db, "host-b"):  # another worker id is another worker
            pass
    with WorkerLock(db, "host-a"):  # released on exit
        pass


def test_a_start_while_another_process_asks_whether_the_id_runs_is_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`running_ids` (another process's inbox asking whether this worker is alive) takes a shared lock for
    an instant; a restart that tried its exclusive one in that instant refused to start, as if a live
    process held the id (6 % of starts under a busy prober). The probe is over before the retry."""
    db = tmp_path / "bot.db"
    probe = os.open(lock_path(db, "host-a"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)  # the prober, caught in its instant
    pauses: list[float] = []

    def probe_ends(seconds: float) -> None:
        pauses.append(seconds)
        fcntl.flock(probe, fcntl.LOCK_UN)

    monkeypatch.setattr(worker_lock, "_pause", probe_ends, raising=False)
    try:
        with WorkerLock(db, "host-a"):
            assert held_here("host-a")
    finally:
        os.close(probe)
    assert len(pauses) == 1


async def test_running_ids_names_the_worker_ids_a_live_process_holds(tmp_path: Path) -> None:
    """What the inbox asks before replaying a claimer's cut-off handler: is that worker alive?"""
    db = tmp_path / "bot.db"
    with WorkerLock(db, "host-a"):
        assert await running_ids(db, {"host-a", "host-b"}) == {"host-a"}
        assert held_here("host-a") and not held_here("host-b")
    assert await running_ids(db, {"host-a", "host-b"}) == set()
    assert not held_here("host-a")


def test_running_ids_on_postgresql_names_the_worker_ids_a_live_process_holds() -> None:
    postgres_or_skip()

    async def check() -> None:
        async with temporary_schema() as url, temporary_schema() as elsewhere:
            lock = PgWorkerLock(url, "host-a")
            await asyncio.to_thread(lock.acquire)
            try:
                assert await running_ids(url, {"host-a", "host-b"}) == {"host-a"}
                assert await running_ids(elsewhere, {"host-a"}) == set()  # another schema, another bot
                assert held_here("host-a") and not held_here("host-b")
            finally:
                await asyncio.to_thread(lock.release)
            assert await running_ids(url, {"host-a", "host-b"}) == set()
            assert not held_here("host-a")

    asyncio.run(check())


def test_the_lock_of_a_killed_process_is_free_at_once(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time; from pathlib import Path; from bot.jobs.worker_lock import WorkerLock\n"
            f"lock = WorkerLock(Path({str(db)!r}), 'host-a'); lock.acquire(); print('held', flush=True)\n"
            "time.sleep(60)"
        )],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(WorkerLockHeld):
            WorkerLock(db, "host-a").acquire()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        with WorkerLock(db, "host-a"):
            pass
    finally:
        if holder.poll() is None:
            holder.kill()


async def test_portrait_bot_run_refuses_a_second_process_with_one_line(tmp_path: Path) -> None:
    fake = FakeTelegram()
    db = tmp_path / "bot.db"
    async with serve(fake) as url:
        env = {
            "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "TELEGRAM_API_URL": f"{url}/bot",
            "TELEGRAM_BOT_TOKEN": fake.token, "VOLC_ACCESSKEY": "a", "VOLC_SECRETKEY": "s",
            "PORTRAIT_BOT_DB": str(db), "WORKER_ID": "host-a",
        }  # fmt: skip
        with WorkerLock(db, "host-a"):
            bot = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
            )
            _, err = await asyncio.wait_for(bot.communicate(), 60)
    assert bot.returncode == 2
    assert (
        err.decode()
        .strip()
        .splitlines()[-1]
        .startswith("portrait-bot: another portrait-bot with WORKER_ID=host-a is running on this database")
    )
    assert "Traceback" not in err.decode()
    assert fake.calls_to("getUpdates") == []
