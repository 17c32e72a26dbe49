"""`portrait-bot` / `python -m bot`: bad configuration is one line and exit 2, generate is delegated."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot import cli
from fake_telegram import FakeTelegram, serve

ROOT = Path(__file__).resolve().parents[2]


def test_missing_configuration_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "TELEGRAM_BOT_TOKEN": "123:abc", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "portrait-bot: invalid configuration: VOLC_ACCESSKEY is required; VOLC_SECRETKEY is required"
    ]
    assert "Traceback" not in result.stderr and "123:abc" not in result.stderr + result.stdout


def test_invalid_value_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    env = {"TELEGRAM_BOT_TOKEN": "t", "VOLC_ACCESSKEY": "a", "VOLC_SECRETKEY": "s"}
    env["DAILY_FREE_QUOTA"] = "many"
    assert cli.run(env) == cli.EXIT_CONFIG
    assert "DAILY_FREE_QUOTA" in capsys.readouterr().err


def test_an_unusable_database_path_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = {"TELEGRAM_BOT_TOKEN": "t", "VOLC_ACCESSKEY": "a", "VOLC_SECRETKEY": "s"}
    env["PORTRAIT_BOT_DB"] = str(blocker / "bot.db")
    assert cli.run(env) == cli.EXIT_CONFIG
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("portrait-bot: PORTRAIT_BOT_DB: cannot create")


async def test_a_token_telegram_refuses_is_one_line(tmp_path: Path) -> None:
    fake = FakeTelegram()  # knows its own token only
    async with serve(fake) as url:
        env = {
            "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "TELEGRAM_API_URL": f"{url}/bot",
            "TELEGRAM_BOT_TOKEN": "111:wrong-token", "VOLC_ACCESSKEY": "a", "VOLC_SECRETKEY": "s",
            "PORTRAIT_BOT_DB": str(tmp_path / "bot.db"),
        }  # fmt: skip
        bot = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(bot.communicate(), 60)
    assert bot.returncode == 2
    assert err.decode().strip().splitlines()[-1] == (
        "portrait-bot: Telegram refused TELEGRAM_BOT_TOKEN (check it with @BotFather)"
    )
    assert "Traceback" not in err.decode() and "wrong-token" not in err.decode()


def test_generate_hands_its_arguments_to_the_api_client_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_run_generate(argv: list[str]) -> int:
        seen.append(list(argv))
        return 7

    monkeypatch.setattr("api_client.cli.run_generate", fake_run_generate)
    assert cli.main(["generate", "--face", "me.jpg", "--prompt", "hi"]) == 7
    assert seen == [["--face", "me.jpg", "--prompt", "hi"]]


def test_admin_hands_its_arguments_to_the_admin_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_run_admin(argv: list[str]) -> int:
        seen.append(list(argv))
        return 3

    monkeypatch.setattr("bot.admin.cli.run_admin", fake_run_admin)
    assert cli.main(["admin", "grant", "@ann", "5", "--json"]) == 3
    assert seen == [["grant", "@ann", "5", "--json"]]


def test_unknown_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fly"])
    assert exit_info.value.code == 2
    assert "usage: portrait-bot" in capsys.readouterr().err
