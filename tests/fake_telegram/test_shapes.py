"""Every JSON object the fake produces survives PTB's de_json/to_dict: no unknown or wrong fields."""

from __future__ import annotations

import json
from typing import Any

import httpx
from telegram import ChatFullInfo, ChatMember, File, Message, TelegramObject, Update, User

from fake_telegram import FakeTelegram, create_app
from tests.fake_telegram.conftest import image_bytes


def unknown(obj: Any, path: str = "") -> list[str]:
    """Fields PTB did not recognise (it parks them in api_kwargs), anywhere in the parsed tree."""
    if isinstance(obj, TelegramObject):
        found = [f"{path}.{key}" for key in obj.api_kwargs]
        for name, value in obj._get_attrs(recursive=False).items():
            found += unknown(value, f"{path}.{name}")
        return found
    if isinstance(obj, list | tuple):
        return [p for i, item in enumerate(obj) for p in unknown(item, f"{path}[{i}]")]
    return []


def lost(raw: Any, parsed: Any, path: str = "") -> list[str]:
    """Paths where PTB dropped or changed what the fake sent (PTB may add its own defaults)."""
    if isinstance(raw, dict) and isinstance(parsed, dict):
        return [
            p
            for k in raw
            for p in (lost(raw[k], parsed[k], f"{path}.{k}") if k in parsed else [f"{path}.{k}"])
        ]
    if isinstance(raw, list) and isinstance(parsed, list) and len(raw) == len(parsed):
        return [
            p for i, (a, b) in enumerate(zip(raw, parsed, strict=True)) for p in lost(a, b, f"{path}[{i}]")
        ]
    return [] if raw == parsed else [f"{path}: {raw!r} != {parsed!r}"]


async def test_updates_and_results_round_trip_through_ptb(fake: FakeTelegram) -> None:
    alice = fake.add_user(1, "Alice", "alice", "zh-hans")
    chat = fake.private_chat(alice)
    group = fake.group(-9, "Club", admins=[alice], bot_member=False)
    text = fake.send_text(alice, chat, "/start hi @bob_x")
    photo = fake.send_photo(alice, chat, image_bytes(500, 400), caption="/anime cute", reply_to=text)
    fake.send_document(alice, chat, b"abc", "a.txt", "text/plain", caption="notes")
    fake.add_bot_to_group(alice, group)
    fake.migrate_group(-9, -1009)
    fake.edit_text(text, "/start again")
    markup = json.dumps(
        {"inline_keyboard": [[{"text": "A", "callback_data": "a"}, {"text": "Docs", "url": "https://x.y"}]]}
    )
    transport = httpx.ASGITransport(app=create_app(fake))
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as http:

        async def result(method: str, **data: str) -> Any:
            return (await http.post(f"/bot{fake.token}/{method}", data=data)).json()["result"]

        sent = await result(
            "sendMessage", chat_id="1", text="<i>hi</i>", parse_mode="HTML", reply_markup=markup
        )
        fake.click(alice, fake.sent_messages(1)[0], "a")
        checks: list[tuple[Any, Any]] = [(u, Update) for u in await result("getUpdates")]
        checks += [
            (sent, Message),
            (await result("getMe"), User),
            (await result("getChat", chat_id="-1009"), ChatFullInfo),
            (await result("getChatMember", chat_id="-1009", user_id="1"), ChatMember),
            (await result("getFile", file_id=photo.photo[0].file_id), File),
        ]

    kinds = {next(k for k in raw if k != "update_id") for raw, cls in checks if cls is Update}
    assert kinds == {"message", "edited_message", "callback_query", "my_chat_member"}
    parsed = [(raw, cls.de_json(raw, None)) for raw, cls in checks]
    assert [p for raw, obj in parsed for p in lost(raw, obj.to_dict())] == []
    assert [p for _, obj in parsed for p in unknown(obj)] == []
