"""Entities in UTF-16 units, parse modes as strict as Telegram's, and the photo size ladder."""

from __future__ import annotations

import pytest

from fake_telegram.errors import ApiError
from fake_telegram.media import photo_ladder
from fake_telegram.text import detect_entities, leading_command, mentions, parse


def test_commands_and_mentions_are_marked_in_utf16_units() -> None:
    text = "👋 /anime@PortraitBot cute @alice_b /x"

    entities = detect_entities(text)

    assert entities == [
        {"type": "bot_command", "offset": 3, "length": 18},
        {"type": "mention", "offset": 27, "length": 8},
        {"type": "bot_command", "offset": 36, "length": 2},
    ]
    assert leading_command("/anime@PortraitBot cute") == ("/anime", "PortraitBot")
    assert leading_command("please /anime") is None
    assert mentions("hey @portraitbot", "PortraitBot") and not mentions("a@portraitbot.com", "PortraitBot")


def test_html_gives_plain_text_and_entities() -> None:
    text, entities = parse('<b>Hi</b> &lt;3 <a href="https://t.me/x">link</a> <code>1 &amp; 2</code>', "HTML")

    assert text == "Hi <3 link 1 & 2"
    assert entities == [
        {"type": "bold", "offset": 0, "length": 2},
        {"type": "text_link", "offset": 6, "length": 4, "url": "https://t.me/x"},
        {"type": "code", "offset": 11, "length": 5},
    ]


@pytest.mark.parametrize(
    ("text", "mode", "reason"),
    [
        ("<b>open", "HTML", 'Can\'t find end tag corresponding to start tag "b"'),
        ("a < b", "HTML", 'Unsupported start tag "" at byte offset 2'),
        ("<b><i>x</b></i>", "HTML", "Unexpected end tag at byte offset 7"),
        ("1-2", "MarkdownV2", "Character '-' is reserved and must be escaped with the preceding '\\'"),
        ("*open", "MarkdownV2", "Can't find end of the entity starting at byte offset 0"),
        ("_open", "Markdown", "Can't find end of the entity starting at byte offset 0"),
    ],
)
def test_broken_markup_is_refused(text: str, mode: str, reason: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse(text, mode)
    assert (caught.value.status, caught.value.description) == (
        400,
        f"Bad Request: can't parse entities: {reason}",
    )


def test_markdown_v2_escapes_and_links() -> None:
    text, entities = parse(r"*Done* \- see [the docs](https://x.y/a) for `a_b`\.", "MarkdownV2")

    assert text == "Done - see the docs for a_b."
    assert [(e["type"], e["offset"], e["length"]) for e in entities] == [
        ("bold", 0, 4),
        ("text_link", 11, 8),
        ("code", 24, 3),
    ]


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1000, 750), [(90, 68), (320, 240), (800, 600), (1000, 750)]),
        ((64, 64), [(64, 64)]),
        ((4000, 3000), [(320, 240), (800, 600), (1280, 960), (2560, 1920)]),
    ],
)
def test_photo_ladder_is_smallest_first_and_capped(
    size: tuple[int, int], expected: list[tuple[int, int]]
) -> None:
    assert [(w, h) for _, w, h in photo_ladder(*size)] == expected
