"""The users-and-operators settings: credit packs, invites, private mode, proxies and the log format."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, Settings
from bot.config_values import AccessList, CreditPack

GOOD = {
    "TELEGRAM_BOT_TOKEN": "123456789:AAH-secret-token-value-abcdefghijklmnop",
    "VOLC_ACCESSKEY": "AKLTexample",
    "VOLC_SECRETKEY": "VerySecretKey==",
}


def test_everything_is_off_by_default() -> None:
    settings = Settings.from_env(GOOD, dotenv=False)
    assert settings.credit_packs == () and settings.referral_bonus == 0 and settings.support_contact == ""
    assert not settings.private_mode
    assert (settings.telegram_proxy, settings.volc_proxy, settings.log_format) == (None, None, "text")


def test_values_are_parsed() -> None:
    env = GOOD | {
        "CREDIT_PACKS": "50:200, 10:50",
        "SUPPORT_CONTACT": " @helpdesk ",
        "REFERRAL_BONUS": "2",
        "ALLOWED_USERS": "1001, @Alice_B",
        "ALLOWED_CHATS": "-100123",
        "TELEGRAM_PROXY": "socks5://user:pass@127.0.0.1:1080",
        "VOLC_PROXY": "http://proxy.example:3128",
        "LOG_FORMAT": "JSON",
    }
    settings = Settings.from_env(env, dotenv=False)
    assert settings.credit_packs == (CreditPack(10, 50), CreditPack(50, 200))
    assert (settings.support_contact, settings.referral_bonus) == ("@helpdesk", 2)
    assert settings.allowed_users == AccessList(frozenset({1001}), frozenset({"alice_b"}))
    assert settings.allowed_users.admits(None, "ALICE_B") and not settings.allowed_users.admits(7, None)
    assert settings.allowed_chats.admits(-100123, None) and settings.private_mode
    assert settings.log_format == "json"
    assert settings.volc_proxy is not None and settings.volc_proxy.value == "http://proxy.example:3128"
    assert "pass" in settings.secret_values()


def test_a_proxy_password_never_prints() -> None:
    settings = Settings.from_env(
        GOOD | {"TELEGRAM_PROXY": "socks5://user:hunter22@10.0.0.1:1080"}, dotenv=False
    )
    text = repr(settings) + str(settings.describe())
    assert "hunter22" not in text and "socks5://user:***@10.0.0.1:1080" in text


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CREDIT_PACKS", "10"),
        ("CREDIT_PACKS", "10:0"),
        ("CREDIT_PACKS", "10:50,10:60"),
        ("REFERRAL_BONUS", "-1"),
        ("ALLOWED_USERS", "alice"),
        ("ALLOWED_CHATS", "@"),
        ("TELEGRAM_PROXY", "ftp://host:21"),
        ("VOLC_PROXY", "http://host:notaport"),
        ("LOG_FORMAT", "xml"),
        ("TELEGRAM_HTTP", "requests"),
    ],
)
def test_bad_values_are_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(GOOD | {name: value}, dotenv=False)


def test_pack_payloads_round_trip_and_reject_junk() -> None:
    pack = CreditPack(10, 50)
    assert CreditPack.from_payload(pack.payload) == pack
    for junk in ("", "pack:", "pack:a:b", "pack:0:5", "gift:10:50", "pack:10"):
        assert CreditPack.from_payload(junk) is None
