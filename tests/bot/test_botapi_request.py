"""The aiohttp Bot API request (bot/chat/botapi.py) against a local server: the answers and failures PTB's
HTTPXRequest turns into TelegramErrors come out as the same errors (the notifier reads NetworkError and
TimedOut as "may have arrived"), the bodies Telegram reads are the ones HTTPXRequest sends, and the
token in the URL never shows in an error."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import BodyPartReader, web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, ReplyParameters
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.chat.botapi import AiohttpRequest

TOKEN = "123456789:AAH-secret-token-value-abcdefghijklmnop"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Server:
    url: str
    answers: dict[str, Handler]
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # method, content type, fields
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server("", {})

    async def route(request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        fields: dict[str, str] = {}
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                assert isinstance(part, BodyPartReader) and part.name is not None
                if part.filename:
                    state.files[part.name] = (part.filename, bytes(await part.read()))
                else:
                    fields[part.name] = await part.text()
        elif request.content_type == "application/json":
            fields = {name: value if isinstance(value, str) else json.dumps(value)
                      for name, value in (await request.json()).items()}  # fmt: skip
        else:
            fields = {name: str(value) for name, value in (await request.post()).items()}
        state.seen.append((method, request.content_type, fields))
        handler = state.answers.get(method)
        if handler is not None:
            return await handler(request)
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", route)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}/bot{TOKEN}"
    yield state
    await runner.cleanup()


@pytest.fixture
async def request_() -> AsyncIterator[AiohttpRequest]:
    request = AiohttpRequest(read_timeout=0.5, connect_timeout=1.0, pool_timeout=0.2)
    async with request:
        yield request


def _data(**values: object) -> RequestData:
    return RequestData([RequestParameter.from_input(name, value) for name, value in values.items()])


def _answer(status: int, body: bytes | str, content_type: str = "application/json") -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, content_type=content_type)

    return handler


async def test_a_bot_talks_through_it(server: Server) -> None:
    message = {"message_id": 7, "date": 1, "chat": {"id": 42, "type": "private"}, "text": "hi ✓"}
    server.answers["getMe"] = _answer(
        200, '{"ok":true,"result":{"id":1,"is_bot":true,"first_name":"B","username":"b_bot"}}'
    )
    server.answers["sendMessage"] = _answer(200, json.dumps({"ok": True, "result": message}))
    bot = Bot(TOKEN, base_url=server.url.removesuffix(TOKEN), request=AiohttpRequest())
    async with bot:
        sent = await bot.send_message(42, "hi ✓", reply_markup=None)
    assert sent.message_id == 7 and sent.text == "hi ✓"
    method, content_type, fields = server.seen[-1]
    assert (method, content_type) == ("sendMessage", "application/json")
    assert fields["chat_id"] == "42" and fields["text"] == "hi ✓"


async def test_structured_fields_go_out_as_one_json_object(server: Server, request_: AiohttpRequest) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Again", callback_data="again:1")]])
    data = _data(chat_id=42, text="ok", reply_markup=keyboard, reply_parameters=ReplyParameters(5))
    await request_.post(f"{server.url}/sendMessage", data)
    _, content_type, fields = server.seen[-1]
    assert content_type == "application/json"
    assert json.loads(fields["reply_markup"]) == keyboard.to_dict()
    assert json.loads(fields["reply_parameters"]) == {"message_id": 5}


async def test_an_answer_to_a_reply_is_parsed_without_the_quoted_message_and_keyboard(server: Server) -> None:
    """Telegram sends the replied-to message and the keyboard back with every reply; the bot never reads
    them there."""
    quoted = {"message_id": 5, "date": 1, "chat": {"id": 42, "type": "private"}, "text": "/anime"}
    keyboard = {"inline_keyboard": [[{"text": "Cancel", "callback_data": "cancel:1"}]]}
    sent = {"message_id": 7, "date": 2, "chat": {"id": 42, "type": "private"}, "text": "queued",
            "reply_to_message": quoted, "reply_markup": keyboard}  # fmt: skip
    server.answers["getMe"] = _answer(
        200, '{"ok":true,"result":{"id":1,"is_bot":true,"first_name":"B","username":"b_bot"}}'
    )
    server.answers["sendMessage"] = _answer(200, json.dumps({"ok": True, "result": sent}))
    server.answers["getUpdates"] = _answer(
        200, json.dumps({"ok": True, "result": [{"update_id": 1, "message": sent}]})
    )
    bot = Bot(TOKEN, base_url=server.url.removesuffix(TOKEN), request=AiohttpRequest())
    async with bot:
        answer = await bot.send_message(42, "queued", reply_parameters=ReplyParameters(5))
        (update,) = await bot.get_updates()
    assert answer.message_id == 7 and answer.reply_to_message is None and answer.reply_markup is None
    assert update.message is not None and update.message.reply_to_message is not None  # updates keep it
    assert update.message.reply_markup is not None
    assert update.message.reply_to_message.text == "/anime"


async def test_an_upload_is_multipart_with_the_file_and_the_fields(
    server: Server, request_: AiohttpRequest
) -> None:
    photo = InputFile(b"\x89PNG fake bytes", filename="portrait.png", attach=True)
    result = await request_.post(f"{server.url}/sendPhoto", _data(chat_id=42, photo=photo, caption="c"))
    assert result is True
    method, content_type, fields = server.seen[-1]
    assert (method, content_type) == ("sendPhoto", "multipart/form-data")
    assert fields["chat_id"] == "42" and fields["caption"] == "c"
    assert fields["photo"].startswith("attach://")
    assert list(server.files.values()) == [("portrait.png", b"\x89PNG fake bytes")]


async def test_429_is_retry_after_and_400_bad_request(server: Server, request_: AiohttpRequest) -> None:
    server.answers["sendMessage"] = _answer(
        429, '{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":7}}'
    )
    server.answers["editMessageText"] = _answer(
        400, '{"ok":false,"error_code":400,"description":"Bad Request: message is not modified"}'
    )
    with pytest.raises(RetryAfter, match="Retry in 7 seconds"):
        await request_.post(f"{server.url}/sendMessage", _data(chat_id=1, text="x"))
    with pytest.raises(BadRequest, match="Message is not modified"):
        await request_.post(f"{server.url}/editMessageText", _data(chat_id=1, text="x"))


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_5xx_is_a_network_error_not_a_timeout(
    server: Server, request_: AiohttpRequest, status: int
) -> None:
    server.answers["sendMessage"] = _answer(status, "<html>gateway</html>", "text/html")
    with pytest.raises(NetworkError) as raised:
        await request_.post(f"{server.url}/sendMessage", _data(chat_id=1, text="x"))
    assert not isinstance(raised.value, TimedOut)


async def test_bad_json_is_an_invalid_server_response(server: Server, request_: AiohttpRequest) -> None:
    server.answers["getMe"] = _answer(200, b'{"ok": true, "result": ')
    with pytest.raises(TelegramError, match="Invalid server response"):
        await request_.post(f"{server.url}/getMe")
    server.answers["getChat"] = _answer(200, b'{"ok":true,"result":{"text":"\xff\xfe"}}')  # not UTF-8
    assert await request_.post(f"{server.url}/getChat") == {"text": "\ufffd\ufffd"}  # PTB's replacement


async def test_a_slow_answer_is_timed_out(server: Server, request_: AiohttpRequest) -> None:
    late = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        await late.wait()
        return web.json_response({"ok": True, "result": True})

    server.answers["sendMessage"] = slow
    with pytest.raises(TimedOut):
        await request_.post(f"{server.url}/sendMessage", _data(chat_id=1, text="x"))
    late.set()
    server.answers.pop("sendMessage")  # the next call on the same request object works again
    assert await request_.post(f"{server.url}/sendMessage", _data(chat_id=1, text="x")) is True


async def test_a_full_pool_is_timed_out(server: Server) -> None:
    release = asyncio.Event()

    async def held(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.json_response({"ok": True, "result": True})

    server.answers["getUpdates"] = held
    async with AiohttpRequest(
        connection_pool_size=1, pool_timeout=0.2, connect_timeout=0.3, read_timeout=10
    ) as request:
        first = asyncio.create_task(request.post(f"{server.url}/getUpdates"))
        await asyncio.sleep(0.1)
        with pytest.raises(TimedOut):
            await request.post(f"{server.url}/getMe")
        release.set()
        assert await first is True


async def test_a_refused_connection_is_a_network_error_without_the_token(request_: AiohttpRequest) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the socket is closed
    with pytest.raises(NetworkError) as raised:
        await request_.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
    assert not isinstance(raised.value, TimedOut)
    assert TOKEN not in str(raised.value) and "secret" not in str(raised.value)


async def test_a_dropped_connection_is_a_network_error_without_the_token(
    server: Server, request_: AiohttpRequest
) -> None:
    async def drop(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b'{"ok": tr')
        assert request.transport is not None
        request.transport.close()
        return response

    server.answers["sendPhoto"] = drop
    with pytest.raises(NetworkError) as raised:
        await request_.post(f"{server.url}/sendPhoto", _data(chat_id=1, photo="file-id"))
    assert not isinstance(raised.value, TimedOut)
    assert "secret" not in str(raised.value)


async def test_files_are_retrieved_with_get(server: Server, request_: AiohttpRequest) -> None:
    server.answers["file.jpg"] = _answer(200, b"\xff\xd8\xff image bytes", "image/jpeg")
    assert await request_.retrieve(f"{server.url}/file.jpg") == b"\xff\xd8\xff image bytes"


async def test_it_refuses_to_work_unopened() -> None:
    with pytest.raises(RuntimeError, match="not initialized"):
        await AiohttpRequest().do_request("http://127.0.0.1:9/botX/getMe", "POST")


async def test_nothing_logged_carries_the_token(
    server: Server, request_: AiohttpRequest, caplog: pytest.LogCaptureFixture
) -> None:
    """httpx logged every URL (and so the token) at INFO; nothing here may, at any level."""
    caplog.set_level(logging.DEBUG)
    server.answers["sendMessage"] = _answer(500, "<html>down</html>", "text/html")
    assert await request_.post(f"{server.url}/getMe") is True
    with pytest.raises(NetworkError):
        await request_.post(f"{server.url}/sendMessage", _data(chat_id=1, text="x"))
    assert caplog.records  # the server's access log, at least: the check below would see a token
    client_side = [r for r in caplog.records if not r.name.startswith("aiohttp.access")]
    assert all(TOKEN not in r.getMessage() and "secret-token" not in r.getMessage() for r in client_side)
