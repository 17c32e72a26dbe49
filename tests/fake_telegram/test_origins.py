"""Forwarded messages, posts on behalf of a chat, automatic forwards and unsized documents: the shapes
Telegram gives them, checked through PTB's parser."""

from __future__ import annotations

import json
from typing import Any

import httpx
from telegram import MessageOriginChannel, MessageOriginHiddenUser, MessageOriginUser, Update
from telegram.constants import ChatID

from fake_telegram import FakeTelegram, create_app
from tests.fake_telegram.conftest import image_bytes
from tests.fake_telegram.test_shapes import lost, unknown


async def _updates(fake: FakeTelegram) -> list[Update]:
    transport = httpx.ASGITransport(app=create_app(fake))
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as http:
        raw: list[dict[str, Any]] = (await http.post(f"/bot{fake.token}/getUpdates")).json()["result"]
    parsed = [Update.de_json(u, None) for u in raw]
    assert [p for r, u in zip(raw, parsed, strict=True) for p in lost(r, u.to_dict())] == []
    assert [p for u in parsed for p in unknown(u)] == []
    return parsed


async def test_forwarded_messages_keep_the_text_and_name_their_origin(fake: FakeTelegram) -> None:
    olga, ann = fake.add_user(1, "Olga"), fake.add_user(2, "Ann", "ann")
    news = fake.channel(-1001, "News")
    chat = fake.private_chat(olga)
    fake.send_text(olga, chat, "/grant @ann 5", forward_from=ann)
    fake.send_photo(olga, chat, image_bytes(300, 300, "JPEG"), caption="/anime", forward_from="Secret Sam")
    fake.send_text(olga, chat, "breaking", forward_from=news)

    first, second, third = (u.message for u in await _updates(fake))

    assert first is not None and isinstance(first.forward_origin, MessageOriginUser)
    assert first.forward_origin.sender_user.id == ann.id and first.from_user is not None
    assert first.from_user.id == olga.id and first.text == "/grant @ann 5"
    assert first.entities[0].type == "bot_command"  # Telegram keeps the original's entities
    assert second is not None and isinstance(second.forward_origin, MessageOriginHiddenUser)
    assert second.caption_entities[0].type == "bot_command"
    assert third is not None and isinstance(third.forward_origin, MessageOriginChannel)
    assert "forwarded from Ann" in fake.transcript()


async def test_posts_on_behalf_of_a_chat_and_automatic_forwards(fake: FakeTelegram) -> None:
    ada = fake.add_user(1, "Ada")
    group = fake.group(-100, "Friends", type="supergroup", admins=[ada])
    channel = fake.channel(-1002, "Ada's channel")
    anonymous = fake.send_text(ada, group, "/anime", as_chat=group)
    as_channel = fake.send_text(ada, group, "/anime", as_chat=channel)
    fake.auto_forward(channel, group, "/anime from the channel")

    first, second, third = (u.message for u in await _updates(fake))

    assert first is not None and first.sender_chat is not None and first.sender_chat.id == group.id
    assert first.from_user is not None and first.from_user.id == ChatID.ANONYMOUS_ADMIN
    assert second is not None and second.sender_chat is not None and second.sender_chat.id == channel.id
    assert second.from_user is not None and second.from_user.id == ChatID.FAKE_CHANNEL
    assert third is not None and third.is_automatic_forward and third.sender_chat is not None
    assert third.from_user is not None and third.from_user.id == ChatID.SERVICE_CHAT
    assert not anonymous.from_bot and not as_channel.from_bot and fake.sent_messages(group.id) == []


async def test_unsized_documents_and_a_self_hosted_download_limit() -> None:
    fake = FakeTelegram(max_download=None)
    alice = fake.add_user(1, "Alice")
    big = b"\xff\xd8\xff" + b"\0" * (21 * 1024 * 1024)
    sent = fake.send_document(
        alice, fake.private_chat(alice), big, "big.jpg", "image/jpeg", report_size=False
    )
    assert sent.document is not None
    transport = httpx.ASGITransport(app=create_app(fake))
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as http:
        (update,) = (await http.post(f"/bot{fake.token}/getUpdates")).json()["result"]
        data = {"file_id": sent.document.file_id}
        info = (await http.post(f"/bot{fake.token}/getFile", data=data)).json()["result"]
        async with http.stream("GET", f"/file/bot{fake.token}/{info['file_path']}") as download:
            length = download.headers.get("content-length")
            received = b"".join([chunk async for chunk in download.aiter_raw()])

    assert "file_size" not in json.dumps(update["message"]["document"]) and "file_size" not in info
    assert length is None and received == big
