"""The wire contract, checked with plain HTTP: shapes, long-polling, and Telegram's error answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from fake_telegram import ApiError, FakeTelegram, create_app, serve
from tests.fake_telegram.conftest import image_bytes


@pytest.fixture
async def client(fake: FakeTelegram) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(fake))
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as http:
        yield http


async def call(
    client: httpx.AsyncClient,
    fake: FakeTelegram,
    method: str,
    files: dict[str, Any] | None = None,
    **params: Any,
) -> tuple[int, dict[str, Any]]:
    """Form-encode like PTB does: strings as they are, everything else as JSON."""
    data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    response = await client.post(f"/bot{fake.token}/{method}", data=data, files=files)
    return response.status_code, response.json()


async def test_wrong_token_and_unknown_method(client: httpx.AsyncClient, fake: FakeTelegram) -> None:
    response = await client.post("/bot1:wrong/getMe")
    assert (response.status_code, response.json()) == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert await call(client, fake, "sendTelepathy") == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found"},
    )
    status, body = await call(client, fake, "GETME")  # method names are case-insensitive
    assert status == 200 and body["result"]["username"] == "EchoTestBot" and body["result"]["is_bot"]


async def test_offset_acknowledges_and_limit_pages(client: httpx.AsyncClient, fake: FakeTelegram) -> None:
    alice = fake.add_user(1, "Alice")
    chat = fake.private_chat(alice)
    for text in ("one", "two", "three"):
        fake.send_text(alice, chat, text)

    _, first = await call(client, fake, "getUpdates", limit=2)
    ids = [u["update_id"] for u in first["result"]]
    _, again = await call(client, fake, "getUpdates", limit=2)  # nothing confirmed yet: same updates
    _, rest = await call(client, fake, "getUpdates", offset=ids[-1] + 1)
    _, after = await call(client, fake, "getUpdates", offset=ids[0])  # older ids are gone for good

    assert [u["message"]["text"] for u in first["result"]] == ["one", "two"]
    assert again == first
    assert [u["message"]["text"] for u in rest["result"]] == ["three"]
    assert [u["message"]["text"] for u in after["result"]] == ["three"]


async def test_long_poll_returns_as_soon_as_an_update_arrives(
    client: httpx.AsyncClient, fake: FakeTelegram
) -> None:
    alice = fake.add_user(1, "Alice")
    poll = asyncio.create_task(call(client, fake, "getUpdates", timeout=30))
    await fake.wait_for(lambda: fake.waiting_polls == 1)

    fake.send_text(alice, fake.private_chat(alice), "/start")
    status, body = await asyncio.wait_for(poll, timeout=5)  # far below the 30 s long-poll

    assert status == 200 and body["result"][0]["message"]["entities"] == [
        {"type": "bot_command", "offset": 0, "length": 6}
    ]


async def test_newer_poll_ends_older_with_conflict_and_close_ends_polls(
    client: httpx.AsyncClient, fake: FakeTelegram
) -> None:
    older = asyncio.create_task(call(client, fake, "getUpdates", timeout=30))
    await fake.wait_for(lambda: fake.waiting_polls == 1)
    newer = asyncio.create_task(call(client, fake, "getUpdates", timeout=30))

    status, body = await asyncio.wait_for(older, timeout=5)
    assert status == 409 and body["description"].startswith("Conflict: terminated by other getUpdates")
    fake.close()
    assert await asyncio.wait_for(newer, timeout=5) == (200, {"ok": True, "result": []})


async def test_allowed_updates_filters_types(client: httpx.AsyncClient, fake: FakeTelegram) -> None:
    alice = fake.add_user(1, "Alice")
    chat = fake.private_chat(alice)
    _, sent = await call(
        client, fake, "sendMessage", chat_id=1, text="pick",
        reply_markup={"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]},
    )  # fmt: skip
    fake.click(alice, fake.sent_messages(chat.id)[0], "a")
    fake.send_text(alice, chat, "hello")

    _, body = await call(client, fake, "getUpdates", allowed_updates=["message"])

    assert [next(k for k in u if k != "update_id") for u in body["result"]] == ["message"]
    assert sent["result"]["reply_markup"] == {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}


LONG_BUTTON = {"inline_keyboard": [[{"text": "B", "callback_data": "d" * 65}]]}
RESERVED = "Character '.' is reserved and must be escaped with the preceding '\\'"
TOO_OLD = "query is too old and response timeout expired or query ID is invalid"


@pytest.mark.parametrize(
    ("method", "params", "description"),
    [
        ("sendMessage", {"text": "hi"}, "chat_id is empty"),
        ("sendMessage", {"chat_id": 1, "text": ""}, "message text is empty"),
        ("sendMessage", {"chat_id": 1, "text": "x" * 4097}, "message is too long"),
        ("sendMessage", {"chat_id": 999, "text": "hi"}, "chat not found"),
        ("sendMessage", {"chat_id": 1, "text": "hi", "reply_markup": LONG_BUTTON}, "BUTTON_DATA_INVALID"),
        ("sendMessage", {"chat_id": 1, "text": "hi", "reply_parameters": {"message_id": 77}},
         "message to be replied not found"),
        ("sendMessage", {"chat_id": 1, "text": "<blink>hi</blink>", "parse_mode": "HTML"},
         'can\'t parse entities: Unsupported start tag "blink" at byte offset 0'),
        ("sendMessage", {"chat_id": 1, "text": "Done.", "parse_mode": "MarkdownV2"},
         f"can't parse entities: {RESERVED}"),
        ("editMessageText", {"chat_id": 1, "message_id": 5, "text": "x"}, "message to edit not found"),
        ("answerCallbackQuery", {"callback_query_id": "nope"}, TOO_OLD),
        ("getChatMember", {"chat_id": 1, "user_id": 4242}, "user not found"),
        ("sendChatAction", {"chat_id": 1, "action": "dancing"}, "wrong parameter action in request"),
    ],
)  # fmt: skip
async def test_bad_requests(
    client: httpx.AsyncClient, fake: FakeTelegram, method: str, params: dict[str, Any], description: str
) -> None:
    fake.private_chat(fake.add_user(1, "Alice"))

    status, body = await call(client, fake, method, **params)

    expected = f"Bad Request: {description}"
    assert (status, body) == (400, {"ok": False, "error_code": 400, "description": expected})
    assert fake.calls[-1].status == 400 and fake.calls[-1].error == expected


async def test_photo_uploads_are_checked(client: httpx.AsyncClient, fake: FakeTelegram) -> None:
    fake.private_chat(fake.add_user(1, "Alice"))
    png = image_bytes(40, 30)

    long_caption = await call(
        client, fake, "sendPhoto", {"photo": ("a.png", png)}, chat_id=1, caption="c" * 1025
    )
    not_image = await call(client, fake, "sendPhoto", {"photo": ("a.png", b"not an image")}, chat_id=1)
    too_thin = await call(client, fake, "sendPhoto", {"photo": ("a.png", image_bytes(2100, 100))}, chat_id=1)
    status, ok = await call(client, fake, "sendPhoto", {"photo": ("a.png", png)}, chat_id=1, caption="ok")

    assert long_caption[1]["description"] == "Bad Request: message caption is too long"
    assert not_image[1]["description"] == "Bad Request: IMAGE_PROCESS_FAILED"
    assert too_thin[1]["description"] == "Bad Request: PHOTO_INVALID_DIMENSIONS"
    assert status == 200 and ok["result"]["photo"][-1]["width"] == 40 and ok["result"]["caption"] == "ok"
    resent = await call(client, fake, "sendPhoto", chat_id=1, photo=ok["result"]["photo"][-1]["file_id"])
    assert resent[1]["result"]["photo"] == ok["result"]["photo"]  # re-sending by file_id keeps the file


async def test_get_file_and_download(client: httpx.AsyncClient, fake: FakeTelegram) -> None:
    alice = fake.add_user(1, "Alice")
    chat = fake.private_chat(alice)
    small = fake.send_document(alice, chat, b"%PDF tiny", "a.pdf", "application/pdf")
    huge = fake.send_document(alice, chat, b"\0" * (20 * 1024 * 1024 + 1), "big.bin", None)
    assert small.document is not None and huge.document is not None

    _, info = await call(client, fake, "getFile", file_id=small.document.file_id)
    path = info["result"]["file_path"]
    download = await client.get(f"/file/bot{fake.token}/{path}")
    wrong_token = await client.get(f"/file/bot1:nope/{path}")
    missing = await client.get(f"/file/bot{fake.token}/documents/none.pdf")
    too_big = await call(client, fake, "getFile", file_id=huge.document.file_id)

    assert download.content == b"%PDF tiny" and info["result"]["file_size"] == 9
    assert (wrong_token.status_code, missing.status_code) == (401, 404)
    assert too_big == (400, {"ok": False, "error_code": 400, "description": "Bad Request: file is too big"})


async def test_json_body_and_ids_per_chat(client: httpx.AsyncClient, fake: FakeTelegram) -> None:
    alice, bob = fake.add_user(1, "Alice"), fake.add_user(2, "Bob")
    fake.send_text(alice, fake.private_chat(alice), "hi")
    fake.private_chat(bob)

    to_alice = await client.post(f"/bot{fake.token}/sendMessage", json={"chat_id": 1, "text": "123"})
    _, to_bob = await call(client, fake, "sendMessage", chat_id=2, text="hey")

    result = to_alice.json()["result"]
    assert (result["message_id"], to_bob["result"]["message_id"]) == (2, 1)
    assert result["from"]["id"] == 123456789 and result["chat"] == {
        "id": 1,
        "type": "private",
        "first_name": "Alice",
    }
    assert fake.calls_to("sendMessage")[0].params == {"chat_id": 1, "text": "123"}


async def test_injected_failures_and_late_answers(fake: FakeTelegram) -> None:
    fake.private_chat(fake.add_user(1, "Alice"))
    fake.fail_next("sendMessage", ApiError(500, "Internal Server Error"))
    fake.answer_late("sendMessage", 30)

    async with serve(fake) as url, httpx.AsyncClient(base_url=url, timeout=0.5) as http:
        failed = await http.post(f"/bot{fake.token}/sendMessage", data={"chat_id": "1", "text": "a"})
        with pytest.raises(httpx.ReadTimeout):
            await http.post(f"/bot{fake.token}/sendMessage", data={"chat_id": "1", "text": "b"})

    assert failed.status_code == 500
    assert [m.text for m in fake.sent_messages(1)] == ["b"]  # timed out, yet delivered: do not resend blindly


async def test_user_edits_arrive_as_edited_message(client: httpx.AsyncClient, fake: FakeTelegram) -> None:
    alice = fake.add_user(1, "Alice")
    message = fake.send_text(alice, fake.private_chat(alice), "/prompt cat")
    fake.edit_text(message, "/prompt dog")

    _, body = await call(client, fake, "getUpdates")

    first, second = body["result"]
    assert first["message"]["text"] == "/prompt cat"
    assert second["edited_message"]["text"] == "/prompt dog" and "edit_date" in second["edited_message"]
    assert second["edited_message"]["message_id"] == first["message"]["message_id"]


async def test_bot_cannot_write_first_to_a_user(client: httpx.AsyncClient, fake: FakeTelegram) -> None:
    stranger = fake.add_user(5, "Sam")

    before = await call(client, fake, "sendMessage", chat_id=5, text="hi")
    fake.private_chat(stranger)  # the user opens the chat (presses Start)
    after = await call(client, fake, "sendMessage", chat_id=5, text="hi")

    assert before[1]["description"] == "Forbidden: bot can't initiate conversation with a user"
    assert (before[0], after[0]) == (403, 200)
