"""The floor under the bot's CPU per generation: the same I/O with no framework, in a process of its own.

    python -m benchmarks.floor_worker --telegram-url URL/bot<token> --base-url EMULATOR --face PATH
        --db PATH --generations N [--warmup 2] --selfie-sql C,F,H --anime-sql C,F,H

Why: the bot's own CPU per generation is compared with a goal (10 ms); whether any design could meet it
depends on what the I/O a generation needs costs by itself on the same machine. This is that I/O done by
the shortest program that still does it for real: one loop long-polling the fake Telegram's getUpdates
(the updates the driver's scripted users send), answers parsed by orjson and kept as dicts, the Bot API
and the file download on one aiohttp session, the upstream through `PortraitClient` (the bot's own
client, as `benchmarks.baseline_worker` runs it), and the SQLite commits on one aiosqlite connection to a
scratch file in WAL mode. Per generation, as the bot:
  selfie update: a commit (the update stored), getFile, the download, the window's other commits, the
    "selfie saved" sendMessage;
  `/anime` update: two commits (the update, the task), the status sendMessage, a commit (its message id),
    submit, a commit, wait for the result (the default poll schedule), sendChatAction, a commit,
    sendPhoto (multipart, the result image), the window's other commits, editMessageText (final status).
`--selfie-sql` / `--anime-sql` say each window's commits, how many of them are fsynced (synchronous=FULL;
the others NORMAL, switched in the BEGIN's hop: no hop of its own, as the bot's second writer connection
costs none) and how many aiosqlite thread hops (BEGIN and COMMIT are one each; the rest are statements
spread over the transactions; the bot runs its one-statement writes without them, so the same hop count
comes with fewer statements here): the bot's figures from the same run. The selfie is prepared before the
clock starts (image work is apart, as in the bot's "own" figure), and no image is decoded.

It prints `ready` once polling (what earlier pollers left is dropped first), then, after `--warmup` +
`--generations` generations, one JSON line: this process's CPU seconds (`time.process_time`, all threads,
so aiosqlite's thread counts as the bot's SQLite threads do) from the end of the warm-up to the end of the
last generation (between generations it sits in a parked long poll), the upstream task of each generation
(the driver joins them with the fake's and the emulator's marks for update -> submit), and what it did:
calls by method, downloads, commits, fsynced commits and hops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiosqlite
import orjson

from api_client import PortraitClient, SubmitRequest
from api_client.loop import fast_loop_factory
from benchmarks.baseline_worker import portrait_client, prepared_request
from bot.replies import t

POLL_SECONDS = 10  # the bot's getUpdates long poll
JSON_BODY = {"Content-Type": "application/json"}
ROW = b"x" * 200  # about a task row's size
#: The bot's own texts (its catalogue, English), so the requests are the size the bot's are.
SAVED, CAPTION = t("face.saved", "en"), t("result.caption", "en", preset="anime")
QUEUED, DONE = t("status.queued", "en", elapsed=0), t("status.done", "en", elapsed=2)


@dataclass
class Floor:
    """What the measured generations cost this process and what they did (this JSON line's fields)."""

    cpu: float = 0.0
    generations: int = 0
    tasks: list[str] = field(default_factory=list)  # the upstream task of each measured generation
    #: Filled by the driver, as the bot's row: the fake hands `/anime` out -> the emulator has the submit.
    update_to_submit: list[float] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    downloads: int = 0
    commits: int = 0
    fsynced: int = 0
    hops: int = 0

    @property
    def cpu_per_generation(self) -> float:
        return self.cpu / self.generations if self.generations else float("nan")

    def restart(self) -> None:
        """Forget the warm-up's counts: the figures are the measured generations'."""
        self.calls, self.downloads, self.commits, self.fsynced, self.hops = {}, 0, 0, 0, 0


def sql_plan(spec: str) -> list[tuple[bool, int]]:
    """`C,F,H` -> C transactions (durable?, statements), the F durable ones first, H hops in all."""
    commits, fsynced, hops = (int(part) for part in spec.split(","))
    if commits <= 0:
        return []
    statements = max(0, hops - 2 * commits)  # each transaction's BEGIN and COMMIT are a hop each
    share, extra = divmod(statements, commits)
    return [(i < fsynced, share + (i < extra)) for i in range(commits)]


class Commits:
    """One window's transactions on the scratch database, taken a few at a time where the bot commits."""

    def __init__(self, conn: aiosqlite.Connection, measured: Floor) -> None:
        self.conn, self.measured = conn, measured
        self.synchronous = "FULL"
        self.pending: list[tuple[bool, int]] = []
        self.key = 0

    async def take(self, count: int | None = None) -> None:
        """The next `count` transactions of the window (None: all that are left)."""
        now = self.pending[:count] if count is not None else self.pending
        self.pending = self.pending[len(now) :]
        for durable, statements in now:
            wanted = "FULL" if durable else "NORMAL"
            if wanted == self.synchronous:
                await self.conn.execute("BEGIN IMMEDIATE")
            else:
                await self.conn.executescript(f"PRAGMA synchronous={wanted}; BEGIN IMMEDIATE")
                self.synchronous = wanted
            for _ in range(statements):
                self.key += 1
                await self.conn.execute("INSERT INTO floor (k, v) VALUES (?, ?)", (self.key, ROW))
            await self.conn.commit()
            self.measured.commits += 1
            self.measured.fsynced += durable
            self.measured.hops += statements + 2


class BotApi:
    """The Bot API over one aiohttp session: JSON bodies and answers through orjson, answers as dicts."""

    def __init__(self, http: aiohttp.ClientSession, url: str, measured: Floor) -> None:
        head, _, token = url.rpartition("/bot")
        self.http, self.url, self.files, self.measured = http, url, f"{head}/file/bot{token}", measured

    async def call(self, method: str, fields: dict[str, Any], form: aiohttp.FormData | None = None) -> Any:
        self.measured.calls[method] = self.measured.calls.get(method, 0) + 1
        body, headers = (form, None) if form is not None else (orjson.dumps(fields), JSON_BODY)
        async with self.http.post(f"{self.url}/{method}", data=body, headers=headers) as answer:
            data = orjson.loads(await answer.read())
        if not data.get("ok"):
            raise RuntimeError(f"{method}: {data}")
        return data["result"]

    async def download(self, file_id: str) -> bytes:
        path = (await self.call("getFile", {"file_id": file_id}))["file_path"]
        self.measured.downloads += 1
        async with self.http.get(f"{self.files}/{path}") as answer:
            answer.raise_for_status()
            return await answer.read()


class FloorBot:
    """The two updates of a generation, handled as the bot handles them, without the bot."""

    def __init__(self, api: BotApi, client: PortraitClient, commits: Commits, request: SubmitRequest, *,
                 selfie_sql: str, anime_sql: str) -> None:  # fmt: skip
        self.api, self.client, self.commits, self.request = api, client, commits, request
        self.selfie_sql, self.anime_sql = sql_plan(selfie_sql), sql_plan(anime_sql)

    async def selfie(self, message: dict[str, Any]) -> None:
        self.commits.pending = list(self.selfie_sql)
        await self.commits.take(1)
        await self.api.download(message["photo"][-1]["file_id"])
        await self.commits.take()
        await self.api.call("sendMessage", self._reply(message, SAVED))

    async def anime(self, message: dict[str, Any]) -> str:
        """The generation; its upstream task id."""
        self.commits.pending = list(self.anime_sql)
        await self.commits.take(2)
        status = await self.api.call("sendMessage", self._reply(message, QUEUED))
        await self.commits.take(1)
        async with self.client.task_slot():
            task_id = await self.client.submit(self.request)
            await self.commits.take(1)
            result = await self.client.wait(task_id)
        chat = message["chat"]["id"]
        await self.api.call("sendChatAction", {"chat_id": chat, "action": "upload_photo"})
        await self.commits.take(1)
        form = aiohttp.FormData()
        form.add_field("chat_id", str(chat))
        form.add_field("caption", CAPTION)
        form.add_field("reply_parameters", orjson.dumps({"message_id": message["message_id"]}).decode())
        form.add_field("photo", result.images[0], filename="portrait.jpg", content_type="image/jpeg")
        await self.api.call("sendPhoto", {}, form)
        await self.commits.take()
        await self.api.call("editMessageText", {
            "chat_id": chat, "message_id": status["message_id"], "text": DONE,
        })  # fmt: skip
        return task_id

    @staticmethod
    def _reply(message: dict[str, Any], text: str) -> dict[str, Any]:
        return {"chat_id": message["chat"]["id"], "text": text,
                "reply_parameters": {"message_id": message["message_id"]}}  # fmt: skip


async def scratch_db(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(str(path), isolation_level=None)
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=FULL")
    await conn.execute("CREATE TABLE IF NOT EXISTS floor (k INTEGER PRIMARY KEY, v BLOB NOT NULL)")
    return conn


async def run(args: argparse.Namespace) -> Floor:
    request = await prepared_request(args.face_bytes)
    measured = Floor()
    conn = await scratch_db(Path(args.db))
    try:
        async with aiohttp.ClientSession() as http, portrait_client(args.base_url, 1) as client:
            api = BotApi(http, args.telegram_url, measured)
            bot = FloorBot(api, client, Commits(conn, measured), request, selfie_sql=args.selfie_sql,
                           anime_sql=args.anime_sql)  # fmt: skip
            left = await api.call("getUpdates", {"timeout": 0})  # an earlier poller's, not ours
            offset = left[-1]["update_id"] + 1 if left else 0
            print("ready", flush=True)
            done, cpu = 0, time.process_time()
            measured.restart()
            while done < args.warmup + args.generations:
                for update in await api.call("getUpdates", {"offset": offset, "timeout": POLL_SECONDS}):
                    offset = update["update_id"] + 1
                    message = update.get("message") or {}
                    if message.get("photo"):
                        await bot.selfie(message)
                    elif message.get("text") == "/anime":
                        task_id = await bot.anime(message)
                        done += 1
                        if done > args.warmup:
                            measured.tasks.append(task_id)
                        elif done == args.warmup:
                            measured.restart()
                            cpu = time.process_time()
            measured.cpu = time.process_time() - cpu
            measured.generations = done - args.warmup
    finally:
        await conn.close()
    return measured


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor_worker", description=__doc__)
    parser.add_argument("--telegram-url", required=True, help="the Bot API base, ending /bot<token>")
    parser.add_argument("--base-url", required=True, help="the emulator")
    parser.add_argument("--face", required=True, help="the selfie, prepared as the bot prepares it")
    parser.add_argument("--db", required=True, help="the scratch SQLite file")
    parser.add_argument("--generations", type=int, required=True, help="measured generations")
    parser.add_argument("--warmup", type=int, default=2, help="generations before the clock starts")
    parser.add_argument("--selfie-sql", required=True, help="commits,fsynced,hops of the selfie's window")
    parser.add_argument("--anime-sql", required=True, help="commits,fsynced,hops of /anime's window")
    args = parser.parse_args(argv)
    args.face_bytes = Path(args.face).read_bytes()
    with asyncio.Runner(loop_factory=fast_loop_factory()) as runner:
        measured = runner.run(run(args))
    print(json.dumps(asdict(measured)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
