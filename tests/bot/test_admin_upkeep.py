"""The database's upkeep from the command line: health check, quota time zone, purge, backup, --help.

Each test looks at what an operator sees (exit code, one line) and at the file afterwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from api_client.images import MAX_BASE64_BYTES
from bot.admin.cli import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, build_parser, run_admin
from bot.jobs.prepared import PreparedCache
from bot.jobs.worker_lock import WorkerLock
from storage import NewTask, Store, TaskState
from storage.migrate import migrate

ROOT = Path(__file__).resolve().parents[2]
ANN = 101
# 25 hours apart: whatever the real time, these two zones are on different dates.
EAST, WEST = "Pacific/Kiritimati", "Pacific/Pago_Pago"
DAY = 86400.0


def fingerprint(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_size, stat.st_mtime_ns


def admin(db: Path, *argv: str, zone: str | None = None) -> tuple[int, str, str]:
    """run_admin with the environment an operator's shell would have; (code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    env = {"QUOTA_TIMEZONE": zone} if zone else {}
    real_err, sys.stderr = sys.stderr, err
    try:
        code = run_admin(["--db", str(db), *argv], stdout=out, env=env)
    finally:
        sys.stderr = real_err
    return code, out.getvalue(), err.getvalue()


async def _seed(path: Path, *, zone: str = "UTC", age: float = 0.0) -> None:
    """Ann with a finished task and a running one, `age` seconds in the past."""
    async with await Store.open(path, quota_timezone=zone, clock=lambda: time.time() - age) as store:
        await store.users.upsert_seen(ANN, username="ann", first_name="Ann", language_code="en")
        await store.quotas.grant(ANN, 2, actor=9, reason="welcome")
        done, _ = await store.tasks.create(NewTask(ANN, ANN, "a:1", 1, "face-1", None, max_active_per_user=5))
        for state in (TaskState.SUBMITTING, TaskState.FAILED):
            await store.tasks.transition(done.id, state)
        await store.tasks.create(NewTask(ANN, ANN, "a:2", 2, "face-2", None, max_active_per_user=5))


def seed(path: Path, **kw: Any) -> Path:
    asyncio.run(_seed(path, **kw))
    return path


def read(path: Path, fn: Any) -> Any:
    async def go() -> Any:
        async with await Store.open(path, read_only=True) as store:
            return await fn(store)

    return asyncio.run(go())


def account(db: Path) -> tuple[str, int, int]:
    """Ann's stored quota account: (quota day, free units used that day, credits)."""
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT free_day, free_used, credits FROM quota_accounts WHERE user_id = ?", (ANN,)
        ).fetchone()
    return (str(row[0]), int(row[1]), int(row[2]))


def healthcheck_argv() -> list[str]:
    """The command the Docker image runs as its health check, read from the Dockerfile itself."""
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(r"HEALTHCHECK[^\n]*\\\n\s*CMD (\[.*\])", text)
    assert match, "the Dockerfile has no HEALTHCHECK CMD"
    argv = json.loads(match.group(1))
    assert argv[:2] == ["portrait-bot", "admin"]
    return list(argv[2:])


# -- item 11: the health check and reports never change the file -----------------------------------------


def test_the_docker_health_check_is_read_only_and_healthy_on_a_good_file(tmp_path: Path) -> None:
    db = seed(tmp_path / "bot.db")
    before = fingerprint(db)
    code, out, _ = admin(db, *healthcheck_argv())
    assert code == EXIT_OK and out.startswith("healthy: schema ")
    assert fingerprint(db) == before  # no migration, no write, no checkpoint


@pytest.mark.parametrize("argv", [["health"], ["ledger", "check"], ["stats"], ["users"]])
def test_an_old_schema_file_is_reported_not_migrated(tmp_path: Path, argv: list[str]) -> None:
    db = tmp_path / "old.db"

    async def at_version_2() -> None:
        async with aiosqlite.connect(db, isolation_level=None) as conn:
            await conn.execute("PRAGMA journal_mode=WAL")
            await migrate(conn, now=1.0, target=2)

    asyncio.run(at_version_2())
    before = fingerprint(db)
    code, out, err = admin(db, *argv)
    assert code == (EXIT_CHECK_FAILED if argv == ["health"] else EXIT_USAGE)
    assert "behind this code" in out + err and "start the bot" in out + err
    assert fingerprint(db) == before
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone() == (2,)


def test_health_fails_on_ledger_problems_and_on_another_zone(tmp_path: Path) -> None:
    db = seed(tmp_path / "bot.db", zone=EAST)
    assert admin(db, "health", zone=EAST)[0] == EXIT_OK
    code, out, _ = admin(db, "health", zone=WEST)
    assert code == EXIT_CHECK_FAILED and f"counts quota days in {EAST}" in out
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE quota_accounts SET credits = credits + 5")
    code, out, _ = admin(db, "health", "--json", zone=EAST)
    data = json.loads(out)
    assert code == EXIT_CHECK_FAILED and data["ok"] is False and "ledger says" in data["problems"][0]


# -- item 12: the quota time zone is the database's --------------------------------------------------------


def test_a_command_with_another_zone_is_refused_and_resets_nobody(tmp_path: Path) -> None:
    db = seed(tmp_path / "bot.db", zone=EAST)
    before = account(db)
    assert before[1] == 1  # the running task's unit, on EAST's date
    code, out, err = admin(db, "grant", "@ann", "5", zone=WEST)
    assert code == EXIT_USAGE and out == ""
    assert err.strip().splitlines() == [
        f"the database counts quota days in {EAST}, but QUOTA_TIMEZONE is {WEST}: set QUOTA_TIMEZONE={EAST}, "
        f"or move the database to {WEST} on purpose with `portrait-bot admin set-timezone {WEST}` "
        "(docs/ADMIN.md)"
    ]
    assert account(db) == before  # same quota day, same free units used, same credits
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM ledger WHERE kind = 'reset'").fetchone() == (0,)
    assert admin(db, "grant", "@ann", "5", zone=EAST)[0] == EXIT_OK


def test_set_timezone_moves_the_zone_on_purpose_and_is_audited(tmp_path: Path) -> None:
    db = seed(tmp_path / "bot.db", zone=EAST)
    code, out, _ = admin(db, "set-timezone", WEST, "--reason", "team moved")
    assert code == EXIT_OK and f"{EAST} -> {WEST}" in out and f"QUOTA_TIMEZONE={WEST}" in out
    assert admin(db, "grant", "@ann", "1", zone=WEST)[0] == EXIT_OK
    assert admin(db, "grant", "@ann", "1", zone=EAST)[0] == EXIT_USAGE
    entries = [e for e in read(db, lambda s: s.admin.audit_log()) if e.action == "set_timezone"]
    assert len(entries) == 1 and entries[0].details.startswith(f"{EAST} -> {WEST}: team moved (via cli:")
    assert read(db, lambda s: s.quotas.check()).ok
    code, out, _ = admin(db, "set-timezone", WEST)
    assert code == EXIT_OK and "nothing changed" in out


def test_set_timezone_is_refused_while_a_bot_runs_or_for_an_unknown_zone(tmp_path: Path) -> None:
    db = seed(tmp_path / "bot.db", zone=EAST)
    with WorkerLock(db, "bot-1"):
        code, _, err = admin(db, "set-timezone", WEST)
        assert code == EXIT_USAGE and "running on this database: stop it first" in err
    code, _, err = admin(db, "set-timezone", "Mars/Base")
    assert code == EXIT_USAGE and "unknown time zone 'Mars/Base'" in err
    assert read(db, lambda s: s.zone.get()) == EAST


@pytest.mark.timeout(60)
def test_the_bot_refuses_to_start_on_a_database_in_another_zone(tmp_path: Path) -> None:
    db = seed(tmp_path / "bot.db", zone=EAST)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TELEGRAM_BOT_TOKEN": "123:abc", "VOLC_ACCESSKEY": "AK", "VOLC_SECRETKEY": "SK",
        "TELEGRAM_API_URL": "http://127.0.0.1:9/bot", "PORTRAIT_BOT_DB": str(db), "QUOTA_TIMEZONE": WEST,
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    expected = f"portrait-bot: PORTRAIT_BOT_DB: the database counts quota days in {EAST}, but QUOTA_TIMEZONE"
    assert len(lines) == 1 and lines[0].startswith(expected)


# -- item 13: purge and backup -------------------------------------------------------------------------------


def test_purge_deletes_old_finished_tasks_and_says_what(tmp_path: Path) -> None:
    db = seed(tmp_path / "bot.db", age=40 * DAY)
    code, out, _ = admin(db, "purge", "--older-than", "30", "--reason", "retention")
    assert code == EXIT_OK
    assert out.startswith("deleted 1 finished tasks that ended before ") and "(failed 1)" in out
    assert "1 unfinished older tasks left alone" in out
    tasks = read(db, lambda s: s.tasks.recent_for_user(ANN))
    assert [t.state for t in tasks] == [TaskState.QUEUED]
    assert admin(db, "ledger", "check")[:2] == (EXIT_OK, "ledger OK\n")
    (entry, *_) = read(db, lambda s: s.admin.audit_log())
    assert entry.action == "purge" and "retention (via cli:" in entry.details
    data = json.loads(admin(db, "purge", "--older-than", "30", "--json")[1])
    assert data["deleted"] == 0 and data["unfinished_kept"] == 1


@pytest.mark.parametrize("days", ["0", "-3", "abc", "1.5", "36501"])
def test_purge_refuses_a_bad_age_and_deletes_nothing(tmp_path: Path, days: str) -> None:
    db = seed(tmp_path / "bot.db", age=40 * DAY)
    code, out, err = admin(db, "purge", f"--older-than={days}")
    assert code == EXIT_USAGE and out == "" and "--older-than must be a whole number of days" in err
    assert len(read(db, lambda s: s.tasks.recent_for_user(ANN))) == 2


def test_backup_while_the_bot_writes_passes_the_ledger_check(tmp_path: Path) -> None:
    """The CLI backup runs as its own process while this process keeps committing quota changes."""
    db = seed(tmp_path / "bot.db")
    target = tmp_path / "backup.db"

    async def scenario() -> tuple[int, str, str]:
        async with await Store.open(db) as bot:
            stop = asyncio.Event()

            async def write() -> None:
                while not stop.is_set():
                    await bot.quotas.grant(ANN, 1, actor=9, reason="busy")

            writer = asyncio.create_task(write())
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.admin.cli", "--db", str(db), "backup", str(target),
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            out, err = await proc.communicate()
            stop.set()
            await writer
            return proc.returncode or 0, out.decode(), err.decode()

    code, out, err = asyncio.run(scenario())
    assert code == EXIT_OK, err
    assert out.startswith(f"wrote {target} (") and "integrity ok, ledger OK" in out
    assert admin(target, "ledger", "check")[:2] == (EXIT_OK, "ledger OK\n")
    code, _, err = admin(db, "backup", str(target))
    assert code == EXIT_USAGE and "exists already" in err


def test_forget_from_the_cli_waits_for_running_work_then_deletes(tmp_path: Path) -> None:
    db = seed(tmp_path / "bot.db")
    credits = account(db)[2]
    code, _, err = admin(db, "forget", "@ann", "--reason", "asked by mail")
    assert code == EXIT_USAGE and "unfinished task(s)" in err
    assert len(read(db, lambda s: s.tasks.recent_for_user(ANN))) == 2
    assert admin(db, "ban", "@ann")[0] == EXIT_OK  # cancels (and refunds) the queued task
    selfie = read(db, lambda s: s.tasks.recent_for_user(ANN))[0].face_file_id
    PreparedCache.beside(db).put(selfie, MAX_BASE64_BYTES, b"prepared selfie")
    code, out, _ = admin(db, "forget", str(ANN), "--reason", "asked by mail")
    assert code == EXIT_OK and out.startswith(f"user {ANN} forgotten: 2 tasks deleted")
    assert PreparedCache.beside(db).get(selfie, MAX_BASE64_BYTES) is None  # its prepared copy went too
    assert read(db, lambda s: s.tasks.recent_for_user(ANN)) == []
    user = read(db, lambda s: s.users.get(ANN))
    assert (user.username, user.first_name, user.banned) == (None, "", True)
    assert account(db)[2] == credits
    assert admin(db, "ledger", "check")[:2] == (EXIT_OK, "ledger OK\n")
    (entry, *_) = read(db, lambda s: s.admin.audit_log())
    assert (entry.action, entry.actor) == ("forget", 0) and "asked by mail (via cli:" in entry.details
    assert admin(db, "forget", "@nobody")[0] == EXIT_USAGE


# -- every sub-command is in --help and in docs/ADMIN.md -------------------------------------------------


def test_every_admin_command_is_in_help_and_in_the_admin_docs(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert commands is not None
    assert run_admin(["--help"]) == 0
    help_text = capsys.readouterr().out
    docs = (ROOT / "docs" / "ADMIN.md").read_text()
    for name in commands:
        assert name in help_text
        assert f"portrait-bot admin {name}" in docs, f"docs/ADMIN.md lacks `portrait-bot admin {name}`"
