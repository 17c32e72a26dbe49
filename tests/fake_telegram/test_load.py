"""The standalone fake's control API: scripted users, their timestamps, the call counts a driver reads."""

from __future__ import annotations

import io
from typing import Any

import httpx
from PIL import Image

from fake_telegram import FakeTelegram
from fake_telegram.control import create_standalone_app
from fake_telegram.load import ScriptedLoad

TOKEN = "123:LOAD"


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), (10, 200, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _client(fake: FakeTelegram) -> httpx.AsyncClient:
    app = create_standalone_app(fake, ScriptedLoad(fake, _jpeg(), first_user_id=7000))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake")


async def _bot(http: httpx.AsyncClient, method: str, **params: Any) -> Any:
    answer = await http.post(f"/bot{TOKEN}/{method}", json=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]


async def test_a_batch_is_acknowledged_then_photographed_with_the_fakes_timestamps() -> None:
    fake = FakeTelegram(token=TOKEN, clock=iter(range(1, 1000)).__next__)
    async with _client(fake) as http:
        batch = (await http.post("/fake/load/batches", json={"users": 2})).json()
        assert batch["chat_ids"] == [7000, 7001]
        await http.post(f"/fake/load/batches/{batch['batch']}/selfies")
        updates = await _bot(http, "getUpdates", timeout=0)
        assert [u["message"]["photo"][-1]["width"] for u in updates] == [400, 400]
        photo = updates[0]["message"]["photo"][-1]["file_id"]
        path = (await _bot(http, "getFile", file_id=photo))["file_path"]
        assert (await http.get(f"/file/bot{TOKEN}/{path}")).status_code == 200
        for chat in batch["chat_ids"]:
            await _bot(http, "sendMessage", chat_id=chat, text="selfie saved")
        waited = await http.post(f"/fake/load/batches/{batch['batch']}/wait", json={"until": "acknowledged"})
        assert waited.json() == {"done": 2, "of": 2}

        await http.post(f"/fake/load/batches/{batch['batch']}/command", json={"text": "/anime"})
        offset = updates[-1]["update_id"] + 1
        commands = await _bot(http, "getUpdates", offset=offset, timeout=0)
        assert [u["message"]["text"] for u in commands] == ["/anime", "/anime"]
        late = await http.post(
            f"/fake/load/batches/{batch['batch']}/wait", json={"until": "photos", "timeout": 0.05}
        )
        assert late.status_code == 504 and late.json()["done"] == 0
        for chat in batch["chat_ids"]:
            await http.post(f"/bot{TOKEN}/sendPhoto", data={"chat_id": str(chat)},
                            files={"photo": ("p.jpg", _jpeg(), "image/jpeg")})  # fmt: skip
        assert (
            await http.post(f"/fake/load/batches/{batch['batch']}/wait", json={"until": "photos"})
        ).json()["done"] == 2

        users = (await http.get(f"/fake/load/batches/{batch['batch']}")).json()["users"]
        stats = (await http.get("/fake/stats")).json()
        calls = (await http.get("/fake/calls", params={"since": 0})).json()
    first = users[0]
    assert first["command_update_id"] == commands[0]["update_id"]
    assert first["selfie_at"] < first["acknowledged_at"] < first["command_queued_at"]
    assert first["command_queued_at"] < first["command_handed_out_at"] < first["photos_arrived"][0]
    assert first["photos_arrived"][0] < first["photos"][0]  # answered after it arrived
    assert stats["downloads"] == 1 and stats["handed_out"] == 4
    assert calls["next"] == stats["calls"]
    assert calls["methods"] == {"getUpdates": 2, "getFile": 1, "sendMessage": 2, "sendPhoto": 2}


async def test_bad_requests_are_refused() -> None:
    async with _client(FakeTelegram(token=TOKEN)) as http:
        assert (await http.post("/fake/load/batches", json={"users": 0})).status_code == 400
        assert (await http.post("/fake/load/batches/9/selfies")).status_code == 404
        assert (await http.post("/fake/load/batches", content=b"{")).status_code == 400
        batch = (await http.post("/fake/load/batches", json={"users": 1})).json()["batch"]
        assert (
            await http.post(f"/fake/load/batches/{batch}/wait", json={"until": "never"})
        ).status_code == 400
        assert (await http.post(f"/fake/load/batches/{batch}/command", json={})).status_code == 400
