"""The scale-out settings: webhook URL, secret and listen address, METRICS_PORT, TASK_LEASE_SECONDS,
TELEGRAM_SEND_RATE."""

from __future__ import annotations

import pytest

from bot import cli
from bot.config import ConfigError, Settings
from bot.config_values import Listen

BASE = {"TELEGRAM_BOT_TOKEN": "t", "VOLC_ACCESSKEY": "a", "VOLC_SECRETKEY": "s"}


def settings(**env: str) -> Settings:
    return Settings.from_env({**BASE, **env}, dotenv=False)


def test_defaults_are_polling_without_an_http_server() -> None:
    s = settings()
    assert s.webhook_url == "" and s.metrics_port is None
    assert s.webhook_listen == Listen("0.0.0.0", 8080) and s.task_lease_seconds == 90.0 and s.run_jobs
    assert s.telegram_send_rate == 30.0  # Telegram's overall limit
    assert settings(TELEGRAM_SEND_RATE="25").telegram_send_rate == 25.0


def test_webhook_settings_are_read_and_the_secret_is_masked() -> None:
    s = settings(
        WEBHOOK_URL="https://bot.example/tg", WEBHOOK_SECRET="s3cret-_X", WEBHOOK_LISTEN="127.0.0.1:8443",
        METRICS_PORT="9100", TASK_LEASE_SECONDS="20",
    )  # fmt: skip
    assert (s.webhook_url, s.webhook_listen) == ("https://bot.example/tg", Listen("127.0.0.1", 8443))
    assert s.metrics_port == 9100
    assert s.task_lease_seconds == 20.0
    assert "s3cret-_X" in s.secret_values()
    assert "s3cret-_X" not in str(s.describe())


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"WEBHOOK_URL": "https://bot.example/tg"}, "WEBHOOK_SECRET is required with WEBHOOK_URL"),
        ({"WEBHOOK_URL": "https://b.example", "WEBHOOK_SECRET": "has space"}, "WEBHOOK_SECRET must be"),
        ({"WEBHOOK_URL": "https://b.example", "WEBHOOK_SECRET": "x" * 257}, "WEBHOOK_SECRET must be"),
        ({"WEBHOOK_URL": "bot.example/tg", "WEBHOOK_SECRET": "ok"}, "WEBHOOK_URL must start with"),
        ({"WEBHOOK_LISTEN": "8080"}, "WEBHOOK_LISTEN"),
        ({"WEBHOOK_LISTEN": "0.0.0.0:99999"}, "WEBHOOK_LISTEN"),
        ({"METRICS_PORT": "metrics"}, "METRICS_PORT"),
        ({"TASK_LEASE_SECONDS": "3"}, "TASK_LEASE_SECONDS must be between 10.0 and 3600.0"),
        ({"TELEGRAM_SEND_RATE": "0"}, "TELEGRAM_SEND_RATE must be between 1.0 and 1000.0"),
    ],
)
def test_bad_scale_settings_are_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        settings(**env)


def test_listen_accepts_ipv6_and_a_bare_port() -> None:
    assert settings(WEBHOOK_LISTEN="[::]:8080").webhook_listen == Listen("::", 8080)
    assert settings(WEBHOOK_LISTEN=":9000").webhook_listen == Listen("0.0.0.0", 9000)


def test_run_webhook_without_a_url_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(dict(BASE), webhook=True) == cli.EXIT_CONFIG
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == "portrait-bot: invalid configuration: --webhook needs WEBHOOK_URL and WEBHOOK_SECRET"


def test_the_command_line_offers_the_roles() -> None:
    parser = cli.build_parser()
    assert vars(parser.parse_args(["run", "--webhook", "--no-jobs"])) == {
        "command": "run", "webhook": True, "no_jobs": True,
    }  # fmt: skip
    assert parser.parse_args(["worker"]).command == "worker"
