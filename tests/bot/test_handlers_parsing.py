"""The pure parts of the handlers: caption commands, which slot a photo fills, how times read."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from telegram import Chat, Message, MessageEntity

from bot.handlers.caption import CaptionCommand, caption_command
from bot.handlers.images import slot_for
from bot.replies import t
from bot.replies.timefmt import duration, reset_time

BOT = "PortraitTestBot"


def photo_message(caption: str | None, command_length: int | None = None) -> Message:
    entities = []
    if command_length is not None:
        entities.append(MessageEntity(MessageEntity.BOT_COMMAND, 0, command_length))
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return Message(1, when, Chat(5, "private"), caption=caption, caption_entities=entities)


@pytest.mark.parametrize(
    ("caption", "length", "expected"),
    [
        ("/anime cute, smiling", 6, CaptionCommand("anime", "cute, smiling")),
        ("/Style", 6, CaptionCommand("style", "")),
        (f"/anime@{BOT} 笑顔 😊", 6 + 1 + len(BOT), CaptionCommand("anime", "笑顔 😊")),
        (f"/anime@{BOT.lower()}  rain ", 6 + 1 + len(BOT), CaptionCommand("anime", "rain")),
    ],
)
def test_caption_commands_for_us_are_found(caption: str, length: int, expected: CaptionCommand) -> None:
    assert caption_command(photo_message(caption, length), BOT) == expected


@pytest.mark.parametrize(
    ("caption", "length"),
    [
        ("/anime@OtherBot hi", 15),
        ("just a caption /anime", None),
        ("/anime but no entity", None),
        (None, None),
    ],
)
def test_other_captions_are_not_commands(caption: str | None, length: int | None) -> None:
    assert caption_command(photo_message(caption, length), BOT) is None


@pytest.mark.parametrize(
    ("command", "awaiting", "slot"),
    [
        (None, None, "face"),
        (None, "style", "style"),
        (None, "face", "face"),
        (CaptionCommand("style", ""), None, "style"),
        (CaptionCommand("face", ""), "style", "face"),
        (CaptionCommand("anime", "x"), "style", "face"),
        (CaptionCommand("help", ""), "style", "style"),
    ],
)
def test_slot_for_a_photo(command: CaptionCommand | None, awaiting: str | None, slot: str) -> None:
    assert slot_for(command, awaiting) == slot


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(1, (0, 1)), (59.5, (0, 1)), (60, (0, 1)), (61, (0, 2)), (3600, (1, 0)), (5 * 3600 + 12 * 60, (5, 12))],
)
def test_duration_rounds_up_to_whole_minutes(seconds: float, expected: tuple[int, int]) -> None:
    hours, minutes = expected
    want = t("time.hours_minutes", "en", hours=hours, minutes=minutes) if hours else t(
        "time.minutes", "en", minutes=minutes
    )
    assert duration(seconds, "en") == want


def test_reset_time_is_shown_in_the_quota_time_zone() -> None:
    resets_at = dt.datetime(2026, 3, 2, 0, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    now = resets_at - 90 * 60
    text = reset_time(resets_at, "Asia/Shanghai", "zh", now=now)
    assert text == t("time.reset_at", "zh", clock="00:00", zone="Asia/Shanghai", delta=duration(5400, "zh"))
