"""The /settings keyboards drawn from the table: unchanged for what was there, plus the new buttons."""

import pytest
from telegram import InlineKeyboardMarkup

from bot.chat.callbacks import OpenMenu, SetOption, choice_keyboard, parse, settings_keyboard
from storage import UserSettings


def _texts(markup: InlineKeyboardMarkup) -> list[list[str]]:
    return [[button.text for button in row] for row in markup.inline_keyboard]


def _data(markup: InlineKeyboardMarkup) -> list[str]:
    return [str(button.callback_data) for row in markup.inline_keyboard for button in row]


@pytest.mark.parametrize(
    "data",
    ["set:size:portrait", "set:hyper:on", "set:wm:on", "set:wml:zh", "set:full:always", "set:id:face",
     "set:preset:anime", "set:lang:en", "set:reset:all", "menu:main", "menu:preset", "menu:size", "menu:id",
     "menu:close", "again:12", "seed:12"],
)  # fmt: skip
def test_buttons_already_sent_in_chats_still_parse(data: str) -> None:
    parsed = parse(data)
    assert parsed is not None and parsed.encode() == data


def test_the_default_main_screen_is_the_one_users_know() -> None:
    assert _texts(settings_keyboard(UserSettings(), "en")) == [
        ["Style: Anime"],
        ["Size: Square"],
        ["Likeness: Keep my face"],
        ["Fast mode: off"],
        ["Watermark: off", "Watermark text: English"],
        ["Full-size file: only when needed"],
        ["Language: English"],
        ["↩️ Reset", "✅ Done"],
    ]


def test_the_watermark_corner_shows_once_a_watermark_is_drawn() -> None:
    markup = settings_keyboard(UserSettings(watermark=True, watermark_position=3), "en")
    assert ["Watermark corner: Top right"] in _texts(markup)
    assert "menu:wmp" in _data(markup)


def test_the_corner_screen_is_a_two_by_two_grid_with_the_current_corner_ticked() -> None:
    markup = choice_keyboard("wmp", UserSettings(watermark=True, watermark_position=1), "zh")
    assert _texts(markup) == [["左上角", "右上角"], ["✓ 左下角", "右下角"], ["⬅️ 返回"]]
    assert [parse(d) for d in _data(markup)][:4] == [
        SetOption("wmp", corner) for corner in ("top_left", "top_right", "bottom_left", "bottom_right")
    ]
    assert parse(_data(markup)[-1]) == OpenMenu("main")


@pytest.mark.parametrize(("style", "shown"), [("file-id", True), (None, False)])
def test_the_remove_style_image_button_shows_only_when_one_is_stored(style: str | None, shown: bool) -> None:
    markup = settings_keyboard(UserSettings(style_file_id=style), "en")
    assert (["🗑 Remove style image"] in _texts(markup)) is shown
    assert ("set:style:clear" in _data(markup)) is shown
