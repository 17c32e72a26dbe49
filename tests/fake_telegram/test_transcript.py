"""The transcript reads like the chat: who said what, media as markers, keyboards underneath."""

from __future__ import annotations

from fake_telegram import FakeTelegram
from fake_telegram.transcript import describe
from tests.fake_telegram.conftest import image_bytes


def test_multiline_text_keyboard_rows_and_media_markers() -> None:
    fake = FakeTelegram()
    alice = fake.add_user(7, "Alice")
    chat = fake.private_chat(alice)
    photo = fake.send_photo(alice, chat, image_bytes(300, 200), caption="/face")
    fake.send_document(alice, chat, image_bytes(50, 40), "me.png", "image/png")
    rows = [[{"text": t, "callback_data": t.lower()} for t in row] for row in (["A", "B"], ["C"])]
    reply = fake.new_message(
        chat,
        fake.bot_user,
        text="Line one\n\nLine three",
        reply_to=photo,
        reply_markup={"inline_keyboard": rows},
    )
    fake.note(chat, describe(reply))
    group = fake.group(-5, "Club", members=[alice])
    fake.send_text(alice, group, "no command here")

    lines = fake.transcript().splitlines()

    assert lines[0] == "[private Alice] #1 Alice: [photo 300x200] /face"
    assert lines[1].startswith("[private Alice] #2 Alice: [document me.png image/png 50x40 ")
    assert lines[2:6] == [
        "[private Alice] #3 bot (re #1): Line one",
        "",
        "    Line three",
        "    [A] [B] | [C]",
    ]
    assert lines[6] == "[group Club] #1 Alice (not delivered: privacy mode): no command here"
    assert fake.transcript(-5).splitlines() == lines[6:]


def test_a_bomb_or_oversized_image_document_is_listed_without_probing_it() -> None:
    """Regression: a PNG whose header claims ~400 MP raised DecompressionBombError inside send_document."""
    from tests.e2e.images import bomb_png

    fake = FakeTelegram()
    alice = fake.add_user(7, "Alice")
    chat = fake.private_chat(alice)
    bomb = fake.send_document(alice, chat, bomb_png(side=20_000), "bomb.png", "image/png")
    huge = fake.send_document(
        alice, chat, b"\xff\xd8\xff" + b"\0" * (21 * 1024 * 1024), "x.jpg", "image/jpeg"
    )
    assert bomb.message_id < huge.message_id
    assert len(fake.transcript().splitlines()) == 2
