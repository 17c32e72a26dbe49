"""Settings fail at start with one line naming every problem, and never show a secret."""

import logging
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings
from bot.log import RedactingFilter

GOOD = {
    "TELEGRAM_BOT_TOKEN": "123456789:AAH-secret-token-value-abcdefghijklmnop",
    "VOLC_ACCESSKEY": "AKLTexample",
    "VOLC_SECRETKEY": "VerySecretKey==",
}


def test_defaults_are_the_real_endpoints() -> None:
    settings = Settings.from_env(GOOD)
    assert settings.telegram_api_url == "https://api.telegram.org/bot"
    assert settings.telegram_file_url == "https://api.telegram.org/file/bot"
    assert settings.volc_endpoint == "https://visual.volcengineapi.com"
    assert settings.daily_free_quota == 3


def test_local_endpoints_and_lists_are_configuration() -> None:
    env = GOOD | {
        "TELEGRAM_API_URL": "http://127.0.0.1:8081/bot",
        "VOLC_ENDPOINT": "http://127.0.0.1:8080/",
        "ADMIN_IDS": "1, 22,333",
        "DAILY_FREE_QUOTA": "7",
        "QUOTA_TIMEZONE": "Asia/Shanghai",
    }
    settings = Settings.from_env(env)
    assert settings.telegram_file_url == "http://127.0.0.1:8081/file/bot"
    assert settings.volc_endpoint == "http://127.0.0.1:8080"
    assert settings.admin_ids == frozenset({1, 22, 333})
    assert settings.daily_free_quota == 7
    assert settings.quota_timezone == "Asia/Shanghai"


def test_every_problem_is_named_in_one_line() -> None:
    env = {
        "VOLC_ACCESSKEY": "x",
        "ADMIN_IDS": "1,abc",
        "DAILY_FREE_QUOTA": "-1",
        "QUOTA_TIMEZONE": "Mars/Base",
    }
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert "\n" not in message
    for name in ("TELEGRAM_BOT_TOKEN", "VOLC_SECRETKEY", "ADMIN_IDS", "DAILY_FREE_QUOTA", "QUOTA_TIMEZONE"):
        assert name in message


def test_secrets_never_show_in_repr() -> None:
    settings = Settings.from_env(GOOD)
    text = repr(settings) + str(settings.describe())
    for secret in GOOD.values():
        assert secret not in text


def test_redacting_filter_masks_token_in_urls_and_tracebacks() -> None:
    token = GOOD["TELEGRAM_BOT_TOKEN"]
    redactor = RedactingFilter([token, GOOD["VOLC_SECRETKEY"]])
    try:
        raise RuntimeError(f"POST https://api.telegram.org/bot{token}/getMe failed")
    except RuntimeError:
        record = logging.LogRecord(
            "httpx", logging.INFO, __file__, 1, "HTTP Request: %s", (f"/bot{token}/sendMessage",), None
        )
        record.exc_info = sys.exc_info()
    redactor.filter(record)
    rendered = logging.Formatter().format(record)
    assert token not in rendered
    assert "***" in rendered


def test_unknown_token_shape_is_masked_even_when_not_configured() -> None:
    redactor = RedactingFilter()
    assert "987654321:" not in redactor.redact(
        "url /bot987654321:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef12345/getMe"
    )


def test_group_status_interval_and_chat_pacing_are_configuration() -> None:
    defaults = Settings.from_env(GOOD, dotenv=False)
    assert (defaults.group_status_edit_interval, defaults.chat_send_interval) == (10.0, 1.0)
    settings = Settings.from_env(
        GOOD | {"GROUP_STATUS_EDIT_INTERVAL": "20", "CHAT_SEND_INTERVAL": "0"}, dotenv=False
    )
    assert (settings.group_status_edit_interval, settings.chat_send_interval) == (20.0, 0.0)
    with pytest.raises(ConfigError) as info:
        bad = {"GROUP_STATUS_EDIT_INTERVAL": "-1", "CHAT_SEND_INTERVAL": "x"}
        Settings.from_env(GOOD | bad, dotenv=False)
    assert "GROUP_STATUS_EDIT_INTERVAL" in str(info.value) and "CHAT_SEND_INTERVAL" in str(info.value)


def test_update_budget_and_download_bound_are_configuration() -> None:
    defaults = Settings.from_env(GOOD, dotenv=False)
    assert (defaults.user_rate_limit, defaults.user_rate_burst, defaults.max_concurrent_downloads) == (
        30.0, 10, 4,
    )  # fmt: skip
    env = GOOD | {"USER_RATE_LIMIT": "0", "USER_RATE_BURST": "3", "MAX_CONCURRENT_DOWNLOADS": "2"}
    s = Settings.from_env(env, dotenv=False)
    assert (s.user_rate_limit, s.user_rate_burst, s.max_concurrent_downloads) == (0, 3, 2)
    with pytest.raises(ConfigError) as info:
        bad = {"USER_RATE_LIMIT": "-1", "USER_RATE_BURST": "0", "MAX_CONCURRENT_DOWNLOADS": "many"}
        Settings.from_env(GOOD | bad, dotenv=False)
    assert all(name in str(info.value) for name in bad)


def test_database_url_chooses_the_backend_and_wins_over_portrait_bot_db() -> None:
    base = GOOD | {"PORTRAIT_BOT_DB": "x.db"}
    assert Settings.from_env(base, dotenv=False).database == Path("x.db")
    url = "postgresql://bot:hunter2@db.internal:5432/portraits"
    pg = Settings.from_env({**base, "DATABASE_URL": url}, dotenv=False)
    assert pg.database == url and pg.database_variable == "DATABASE_URL"
    assert "hunter2" in pg.secret_values() and "hunter2" not in str(pg.describe())
    lite = Settings.from_env({**base, "DATABASE_URL": "sqlite:////srv/bot.db"}, dotenv=False)
    assert lite.database == Path("/srv/bot.db") and lite.database_url is None
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Settings.from_env({**base, "DATABASE_URL": "mysql://x/y"}, dotenv=False)
