"""The /forgetme buttons' data: parsed in the one parser, within Telegram's 64 bytes, forgeries refused."""

from __future__ import annotations

import pytest

from bot.chat.callbacks import MAX_CALLBACK_BYTES, Forget, parse


@pytest.mark.parametrize("confirm", [True, False])
def test_forget_buttons_round_trip_within_64_bytes(confirm: bool) -> None:
    button = Forget(user_id=10**18 - 1, confirm=confirm)
    data = button.encode()
    assert len(data.encode()) <= MAX_CALLBACK_BYTES
    assert parse(data) == button


@pytest.mark.parametrize(
    "data",
    ["forget:yes", "forget:maybe:1", "forget:yes:-1", "forget:yes:abc", "forget:no:" + "9" * 19, "forget"],
)
def test_malformed_forget_data_is_stale(data: str) -> None:
    assert parse(data) is None
