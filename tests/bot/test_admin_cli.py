"""`portrait-bot admin ...` on a real Store file: what an operator sees, and what the DB holds after."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.admin.cli import EXIT_CHECK_FAILED, EXIT_NO_DB, EXIT_OK, EXIT_USAGE, run_admin
from storage import NewTask, Store, TaskState

ANN, BOB, OWNER = 101, 202, 999
ROOT = Path(__file__).resolve().parents[2]


async def _seed(path: Path) -> None:
    async with await Store.open(path, daily_free_quota=3) as store:
        await store.users.upsert_seen(ANN, username="ann", first_name="Ann", language_code="en")
        await store.users.upsert_seen(BOB, username="bob", first_name="Bob", language_code="zh")
        await store.users.upsert_seen(OWNER, username="boss", first_name="Boss", language_code="en")
        task, _ = await store.tasks.create(NewTask(BOB, BOB, "bob:1", 1, "face-1", None))
        await store.tasks.transition(task.id, TaskState.FAILED, error_code="50411")
        await store.tasks.create(NewTask(BOB, BOB, "bob:2", 2, "face-2", None))  # still queued


async def _read(path: Path, fn: Callable[[Store], Awaitable[Any]]) -> Any:
    async with await Store.open(path, daily_free_quota=3) as store:
        return await fn(store)


def read(path: Path, fn: Callable[[Store], Awaitable[Any]]) -> Any:
    return asyncio.run(_read(path, fn))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "bot.db"
    asyncio.run(_seed(path))
    return path


class Cli:
    """run_admin on the seeded DB; captures stdout and stderr."""

    def __init__(self, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.db = db
        self.capsys = capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        out = io.StringIO()
        self.capsys.readouterr()
        code = run_admin(["--db", str(self.db), *argv], stdout=out, env={"DAILY_FREE_QUOTA": "3"})
        return code, out.getvalue(), self.capsys.readouterr().err

    def json(self, *argv: str) -> Any:
        code, out, err = self(*argv, "--json")
        assert code == EXIT_OK, err
        return json.loads(out)


@pytest.fixture
def cli(db: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db, capsys)


def test_users_table_and_json(cli: Cli) -> None:
    code, out, _ = cli("users")
    assert code == EXIT_OK
    header = out.splitlines()[0].split()
    assert header[:3] == ["id", "username", "first_name"]
    assert {"ann", "bob", "boss"} <= set(out.split())
    rows = cli.json("users")
    assert {r["id"]: r["username"] for r in rows} == {ANN: "ann", BOB: "bob", OWNER: "boss"}
    assert cli.json("users", "--limit", "1") and len(cli.json("users", "--limit", "1")) == 1


def test_user_shows_profile_balance_ledger_and_tasks(cli: Cli) -> None:
    data = cli.json("user", "@bob")
    assert data["user"]["id"] == BOB
    assert data["balance"]["free_left"] == 2  # one failed (refunded) + one queued (reserved) of 3
    assert {t["state"] for t in data["tasks"]} == {"failed", "queued"}
    assert {e["kind"] for e in data["ledger"]} >= {"reserve", "refund"}
    code, out, _ = cli("user", str(BOB))
    assert code == EXIT_OK and "free_left" in out and "ledger:" in out and "queued" in out


def test_grant_changes_balance_and_is_audited_with_cli_actor(cli: Cli, db: Path) -> None:
    data = cli.json("grant", str(ANN), "5", "--reason", "contest prize")
    assert data["balance"]["credits"] == 5
    code, out, _ = cli("grant", "@ann", "-2")
    assert code == EXIT_OK and "credits" in out and " 3" in out
    assert read(db, lambda s: s.quotas.balance(ANN)).credits == 3
    audit = cli.json("audit")
    newest, older = audit[0], audit[1]
    assert (newest["action"], newest["target"], newest["actor"]) == ("adjust", str(ANN), 0)
    assert older["action"] == "grant"
    assert "contest prize" in older["details"] and "via cli:" in older["details"]
    ledger = read(db, lambda s: s.quotas.ledger(ANN))
    assert [(e.kind, e.credits) for e in ledger] == [("adjust", -2), ("grant", 5)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("grant", "555", "5"), "Unknown user 555"),
        (("grant", "@nobody", "5"), "Unknown user @nobody"),
        (("grant", str(ANN), "0"), "Zero changes nothing"),
        (("grant", str(ANN), "1000001"), "too big"),
        (("grant", str(ANN), "99999999999999999999"), "not a whole number"),
        (("grant", str(ANN), "five"), "not a whole number"),
        (("grant", str(ANN), "2.5"), "not a whole number"),
        (("grant", str(ANN), "-1"), "go below zero"),
        (("grant", str(ANN)), "the following arguments are required: amount"),
        (("set-daily", str(ANN), "-1"), "negative"),
        (("set-daily", "default", "abc"), "not a whole number"),
        (("set-daily", "default", "2000000"), "too big"),
        (("ban", "777"), "Unknown user 777"),
        (("unban", "@ghost"), "Unknown user @ghost"),
        (("tasks", "--state", "exploded"), "invalid choice"),
        (("frobnicate",), "invalid choice"),
        (("users", "--limit", "0"), "--limit"),
        (("export", "--format", "csv"), "needs --out"),
    ],
)
def test_refusals_exit_2_with_a_reason_and_change_nothing(
    cli: Cli, db: Path, argv: tuple[str, ...], message: str
) -> None:
    code, out, err = cli(*argv)
    assert code == EXIT_USAGE
    assert message in err
    assert out == ""
    assert read(db, lambda s: s.quotas.balance(ANN)).credits == 0
    assert read(db, lambda s: s.admin.audit_log()) == []


def test_set_daily_for_one_user_and_for_everyone(cli: Cli, db: Path) -> None:
    assert cli.json("set-daily", str(ANN), "10")["balance"]["daily_allowance"] == 10
    assert cli.json("set-daily", "default", "0") == {"default_daily": 0}
    assert read(db, lambda s: s.quotas.balance(BOB)).daily_allowance == 0
    assert read(db, lambda s: s.quotas.balance(ANN)).daily_allowance == 10
    code, out, _ = cli("set-daily", "default", "4")
    assert code == EXIT_OK and "default daily allowance: 4" in out
    assert [e["action"] for e in cli.json("audit")] == ["set_daily"] * 3


def test_ban_cancels_and_refunds_running_tasks_then_unban(cli: Cli, db: Path) -> None:
    data = cli.json("ban", str(BOB), "--reason", "spam")
    assert data["user"]["banned"] is True and data["user"]["ban_reason"].startswith("spam")
    assert len(data["cancelled_tasks"]) == 1
    tasks = read(db, lambda s: s.tasks.recent_for_user(BOB))
    assert {t.state for t in tasks} == {TaskState.CANCELLED, TaskState.FAILED}
    assert read(db, lambda s: s.quotas.balance(BOB)).free_left == 3  # refunded
    code, out, _ = cli("unban", "@bob")
    assert code == EXIT_OK and "banned" in out and "no" in out.split()
    assert read(db, lambda s: s.users.get(BOB)).banned is False
    assert [e["action"] for e in cli.json("audit")] == ["unban", "ban"]


def test_stats_table_and_json(cli: Cli) -> None:
    data = cli.json("stats")
    assert data["users_total"] == 3
    assert data["tasks_by_state"] == {"failed": 1, "queued": 1}
    code, out, _ = cli("stats")
    assert code == EXIT_OK and "users_total" in out and "failed=1" in out


def test_tasks_by_state(cli: Cli) -> None:
    failed = cli.json("tasks", "--state", "failed")
    assert [(t["user_id"], t["error_code"]) for t in failed] == [(BOB, "50411")]
    assert cli.json("tasks", "--state", "done") == []
    code, out, _ = cli("tasks", "--state", "done")
    assert code == EXIT_OK and out.strip() == "(none)"
    code, out, _ = cli("tasks", "--state", "queued")
    assert code == EXIT_OK and "queued" in out


def test_ledger_check_ok_then_fails_on_a_tampered_balance(cli: Cli, db: Path) -> None:
    assert cli("ledger", "check")[:2] == (EXIT_OK, "ledger OK\n")
    assert cli.json("ledger", "check") == {"ok": True, "problems": []}
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE quota_accounts SET credits = credits + 7 WHERE user_id = ?", (BOB,))
    code, out, _ = cli("ledger", "check")
    assert code == EXIT_CHECK_FAILED and "ledger problems" in out
    code, out, _ = cli("ledger", "check", "--json")
    assert code == EXIT_CHECK_FAILED and json.loads(out)["ok"] is False


def test_export_json_and_csv(cli: Cli, tmp_path: Path) -> None:
    cli.json("grant", str(ANN), "4", "--reason", "gift")
    code, out, _ = cli("export")
    data = json.loads(out)
    assert {u["id"] for u in data["users"]} == {ANN, BOB, OWNER}
    assert ("grant", 4) in {(e["kind"], e["credits"]) for e in data["ledger"] if e["user_id"] == ANN}

    code, out, _ = cli("export", "--format", "csv", "--table", "users")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == EXIT_OK and {r["username"] for r in rows} == {"ann", "bob", "boss"}

    target = tmp_path / "export.csv"
    code, out, _ = cli("export", "--format", "csv", "--out", str(target))
    assert code == EXIT_OK and "wrote" in out
    users = list(csv.DictReader(target.open()))
    ledger = list(csv.DictReader((tmp_path / "export.ledger.csv").open()))
    assert len(users) == 3
    assert {"grant", "reserve", "refund"} <= {r["kind"] for r in ledger}

    out_json = tmp_path / "all.json"
    assert cli("export", "--format", "json", "--out", str(out_json))[0] == EXIT_OK
    assert set(json.loads(out_json.read_text())) == {"users", "ledger"}


def test_missing_database_is_exit_3_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nope.db"
    assert run_admin(["--db", str(path), "users"], env={}) == EXIT_NO_DB
    assert "no database" in capsys.readouterr().err
    assert not path.exists()


def test_db_path_comes_from_portrait_bot_db(db: Path) -> None:
    out = io.StringIO()
    assert run_admin(["users", "--json"], stdout=out, env={"PORTRAIT_BOT_DB": str(db)}) == EXIT_OK
    assert len(json.loads(out.getvalue())) == 3


def test_subprocess_grant_while_another_connection_holds_the_db(db: Path) -> None:
    """The operator process and the bot's open store share the file (WAL): the bot sees the grant at once."""

    async def scenario() -> int:
        async with await Store.open(db, daily_free_quota=3) as bot_store:
            assert (await bot_store.quotas.balance(ANN)).credits == 0
            env = {**os.environ, "PORTRAIT_BOT_DB": str(db)}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.admin.cli", "grant", "@ann", "7", "--reason", "ops", "--json",
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            out, err = await proc.communicate()
            assert proc.returncode == EXIT_OK, err.decode()
            assert json.loads(out)["balance"]["credits"] == 7
            return (await bot_store.quotas.balance(ANN)).credits

    assert asyncio.run(scenario()) == 7
