"""Buttons round-trip through the one parser, fit in 64 bytes, and stale data parses to None."""

import pytest
from telegram import InlineKeyboardMarkup

from bot.chat.callbacks import (
    MAX_CALLBACK_BYTES,
    SETTING_CHOICES,
    Callback,
    OpenMenu,
    Repeat,
    SendAgain,
    SetOption,
    choice_keyboard,
    parse,
    resend_keyboard,
    result_keyboard,
    settings_keyboard,
)
from bot.preferences import size_name
from bot.replies import catalogue
from storage import UserSettings as _Settings


def _all_callback_data(markup: InlineKeyboardMarkup) -> list[str]:
    return [str(b.callback_data) for row in markup.inline_keyboard for b in row]


@pytest.mark.parametrize(
    "callback",
    [SetOption(f, v) for f, vs in SETTING_CHOICES.items() for v in vs]
    + [OpenMenu("size"), OpenMenu("close"), Repeat(42, False), Repeat(10**17, True), SendAgain(10**17)],
)
def test_every_button_round_trips(callback: Callback) -> None:
    data = callback.encode()
    assert len(data.encode()) <= MAX_CALLBACK_BYTES
    assert parse(data) == callback


@pytest.mark.parametrize(
    "data",
    ["", "set:size:huge", "set:evil:1", "menu:nowhere", "again:", "again:abc", "seed:-3", "x" * 65, None, 5,
     "again:" + "9" * 19, "set:size", "arbitrary-callback-from-old-version", "resend:", "resend:-1",
     "resend:1:2"],
)
def test_stale_or_forged_data_parses_to_none(data: object) -> None:
    assert parse(data) is None


def test_result_keyboard_offers_again_and_new_seed_in_the_users_language() -> None:
    markup = result_keyboard(7, "zh")
    assert [parse(d) for d in _all_callback_data(markup)] == [Repeat(7, False), Repeat(7, True)]
    texts = [b.text for row in markup.inline_keyboard for b in row]
    assert texts == [catalogue("zh")["button.again"], catalogue("zh")["button.new_seed"]]


def test_the_send_again_button_names_its_task_in_the_users_language() -> None:
    markup = resend_keyboard(9, "zh")
    assert [parse(d) for d in _all_callback_data(markup)] == [SendAgain(9)]
    assert [b.text for row in markup.inline_keyboard for b in row] == [catalogue("zh")["button.send_again"]]


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("menu", ["main", "preset", "size", "id"])
def test_settings_screens_only_carry_parseable_buttons(menu: str, lang: str) -> None:
    s = _Settings(width=864, height=1152, hyper=True)
    markup = choice_keyboard(menu, s, lang)
    assert all(parse(d) is not None for d in _all_callback_data(markup))
    texts = " ".join(b.text for row in markup.inline_keyboard for b in row)
    assert "{" not in texts


def test_main_screen_shows_current_values_and_toggles_to_the_opposite() -> None:
    markup = settings_keyboard(_Settings(hyper=True, watermark=False), "en")
    data = [parse(d) for d in _all_callback_data(markup)]
    assert SetOption("hyper", "off") in data
    assert SetOption("wm", "on") in data
    texts = [b.text for row in markup.inline_keyboard for b in row]
    assert "Fast mode: on" in texts and "Watermark: off" in texts


@pytest.mark.parametrize(
    ("on", "label", "tap"), [(False, "only when needed", "always"), (True, "always", "auto")]
)
def test_full_size_file_row_shows_the_choice_and_offers_the_other(on: bool, label: str, tap: str) -> None:
    markup = settings_keyboard(_Settings(full_size_file=on), "en")
    buttons = {b.text: parse(b.callback_data) for row in markup.inline_keyboard for b in row}
    assert buttons[f"Full-size file: {label}"] == SetOption("full", tap)


def test_choice_screen_ticks_the_current_size() -> None:
    markup = choice_keyboard("size", _Settings(width=1152, height=864), "en")
    ticked = [b.text for row in markup.inline_keyboard for b in row if b.text.startswith("✓")]
    assert ticked == ["✓ Landscape"]
    assert size_name(1234, 1000) == "custom"
