"""The crash soak: two bot workers on one database, killed a hundred times at random points.

Real processes: the emulator (`python -m api_client.emulator`, its own process, answering 0.2 s late so
that kills land inside submits too; it lists its accepted submits with their prompts), the fake Telegram
(served by this test process, which records every photo and what it replies to), and two workers forked
by tests/e2e/soak_workers.py: `w-poll` runs `portrait-bot run` (the only one polling Telegram), `w-jobs`
the same Application without polling. Both hold WORKER_ID leases on one SQLite file, with the lease
intervals scaled down (PORTRAIT_BOT_TIME_SCALE).

Users keep asking for portraits (`/anime soak<user>n<k>`: the words reach the service's prompt, which
names the request), sometimes followed by /cancel, while the chaos loop:
- SIGKILLs a worker after a random pause and restarts it at once, KILLS times in all (mostly the last
  victim again, a crash loop, so that the other one lives long enough to finish work);
- sometimes SIGSTOPs a worker for longer than a lease (a frozen VM), then SIGCONTs it, or kills it frozen;
- sometimes restarts a worker with its wall clock stepped forward past the leases
  (PORTRAIT_BOT_CLOCK_OFFSET): it then sees every other worker's lease as expired;
- a few times has the fake Telegram answer the next sendPhoto with 502 Bad Gateway: nothing was sent, but
  the bot cannot know that (as after a timeout), so there is always a portrait that must come through
  "Send it again" (below), not only when a kill happens to land inside an upload.

Then everything settles on clean restarts. A task whose photo may have gone out just before a kill (or a
takeover) ended unconfirmed (bot/jobs/delivery.py): done, its unit spent, never resent on its own, and a
note with "Send it again". Its user presses that button when the photo never reached Telegram (as a user
who does not see it would), and one photo must follow. Then the test checks what a user and the operator
would: each request got at most one portrait, no request reached the service twice, every task ended
delivered (its unit spent, the unconfirmed ones included: each has exactly one photo, the first or the
one its button sent) or refunded (or spent by the documented rule: ended after the service accepted it),
with no exception: no unit lost, none granted for free. `portrait-bot admin ledger check` is clean, and
per user the units spent equal the portraits delivered plus the ones spent by rule. Requests that never
became a task are checked against the durable inbox (bot/ops/dedupe.py): an update is stored before
Telegram is told it arrived and replayed if its receiver died, and an /anime whose handler a kill cut off
is replay-safe (its task is deduplicated by the request), so it is handled again once its claimer is known
dead: a request with no task and no answer is a failure, whatever its inbox state. No update may be left
`received` (unclaimed) once the system settled.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import random
import re
import signal
import socket
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.requests import ClientDisconnect

from fake_telegram import ApiError, FakeChat, FakeTelegram, FakeUser, serve
from storage import TERMINAL, UNCONFIRMED, Store, Task, TaskState
from tests.e2e.images import draw_selfie
from tests.e2e.soak_report import WorkerState, stuck_report

ROOT = Path(__file__).resolve().parents[2]
SERVER = Path(__file__).with_name("soak_workers.py")
TOKEN = "246813579:SOAK-token-for-the-crash-test-only-000000"
AK, SK = "AKSOAK", "SKSOAK"

KILLS = 100
USERS = 8
#: Production lease 90 s, scan 5 s, renewal 20 s, all times this: a lease of 3 s.
TIME_SCALE = 1 / 30
LEASE = 90 * TIME_SCALE
#: The pause before each kill (seconds, uniform; freezes add none): 100 kills take about 40 s.
PAUSE = (0.1, 0.6)
FREEZE_SHARE, FREEZE = 0.08, (1.3 * LEASE, 2.0 * LEASE)
KILL_FROZEN_SHARE = 0.3
STEP_SHARE, STEP = 0.15, (1.5 * LEASE, 6.0 * LEASE)
STICKY = 0.7
CANCEL_SHARE = 0.1
#: A request with no task after this long is left (its handler may have been cut off mid-run).
GIVE_UP = 8.0
#: How long a press of "Send it again" may take to bring its photo (a fetch and an upload, no chaos).
SENT_AGAIN = 30.0
#: After these kills the next sendPhoto is answered 502 (nothing sent, the delivery unconfirmed).
BAD_GATEWAY_AT = frozenset({20, 50, 80})
SETTLE = 90.0
MARKER = re.compile(r"soak(\d+)n(\d+)")
#: The workers' log line for handlers a kill cut off and the inbox replayed (bot/ops/inbox.py).
REPLAYED = re.compile(r"replaying (\d+) update\(s\) whose handler a dead process had started")
SEED = 20261206
#: Inbox rows that still owe a handler: never claimed, or replay-safe and not handled (running or cut off).
OWED = "state = 'received' OR (state = 'started' AND payload IS NOT NULL)"


class _NoKilledClients(logging.Filter):
    """A bot killed in the middle of a request is the point here: the fake's server need not report it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ClientDisconnect))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Request:
    user_id: int
    chat_id: int
    message_id: int
    marker: str
    update_id: int

    @property
    def origin_key(self) -> str:
        return f"msg:{self.chat_id}:{self.message_id}"


@dataclass
class Worker:
    name: str
    mode: str  # "run" (polls Telegram) | "jobs"
    pid: int = 0
    offset: float = 0.0
    frozen: bool = False


@dataclass
class Chaos:
    kills: int = 0
    kills_frozen: int = 0
    freezes: int = 0
    steps: int = 0
    bad_gateways: int = 0
    exits: Counter[int] = field(default_factory=Counter)
    hit: Counter[str] = field(default_factory=Counter)  # states of the tasks the killed workers held


class Workers:
    """The fork server and the two workers it runs."""

    def __init__(self, proc: asyncio.subprocess.Process, tmp: Path, env: dict[str, str]) -> None:
        self._proc = proc
        self._tmp = tmp
        self._env = env
        self._lock = asyncio.Lock()
        self.all = [Worker("w-poll", "run"), Worker("w-jobs", "jobs")]

    async def _ask(self, line: str) -> str:
        async with self._lock:
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._proc.stdin.write(line.encode() + b"\n")
            await self._proc.stdin.drain()
            answer = await asyncio.wait_for(self._proc.stdout.readline(), 60)
        assert answer, "the fork server died"
        return answer.decode().strip()

    async def start(self, worker: Worker, offset: float = 0.0) -> None:
        env = {**self._env, "WORKER_ID": worker.name}
        if offset:
            env["PORTRAIT_BOT_CLOCK_OFFSET"] = repr(offset)
        log = self._tmp / f"{worker.name}.log"
        with log.open("a") as out:
            out.write(f"---- start (clock offset {offset:+.1f} s)\n")
        worker.pid = int(await self._ask(f"spawn {worker.mode} {self._tmp} {log} {json.dumps(env)}"))
        worker.offset, worker.frozen = offset, False

    async def kill(self, worker: Worker) -> int:
        os.kill(worker.pid, signal.SIGKILL)
        return int(await self._ask(f"reap {worker.pid}"))

    async def stop(self, worker: Worker) -> int:
        if worker.frozen:
            os.kill(worker.pid, signal.SIGCONT)
        os.kill(worker.pid, signal.SIGTERM)
        return int(await self._ask(f"reap {worker.pid}"))

    async def report(self, fake: FakeTelegram, db: Path) -> str:
        """Everything about a stall before the chaos (tests/e2e/soak_report.py): the workers' states,
        stacks, tasks and logs, the store's inbox and tasks, the fake's calls."""
        states = [WorkerState(w.name, w.pid, await self._ask(f"status {w.pid}"), self._tmp / f"{w.name}.log")
                  for w in self.all]  # fmt: skip
        return await stuck_report(states, fake, db)


@contextlib.asynccontextmanager
async def emulator_process(tmp: Path) -> AsyncIterator[str]:
    port = _free_port()
    args = [
        "--host", "127.0.0.1", "--port", str(port), "--access-key", AK, "--secret-key", SK,
        "--queue-seconds", "0.2", "--generate-seconds", "0.8", "--generate-jitter", "0.5",
        "--latency", "0.2", "--seed", "7", "--log-level", "warning",
    ]  # fmt: skip
    with (tmp / "emulator.log").open("w") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "api_client.emulator", *args, cwd=ROOT, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{url}/emulator/health")).status_code == 200:
                        break
                await asyncio.sleep(0.05)  # waiting for the server to listen, not a timing assumption
            else:
                raise AssertionError("the emulator did not start")
        yield url
    finally:
        proc.terminate()
        await proc.wait()


@contextlib.asynccontextmanager
async def fork_server(tmp: Path, env: dict[str, str]) -> AsyncIterator[Workers]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(SERVER), cwd=tmp, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**env, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    try:
        yield Workers(proc, tmp, env)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the server kills and reaps every child still alive
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class Soak:
    def __init__(self, fake: FakeTelegram, workers: Workers, db: Path) -> None:
        self.fake = fake
        self.workers = workers
        self.db = db
        self.rng = random.Random(SEED)
        self.chaos = Chaos()
        self.requests: list[Request] = []
        self.feeding = True
        self.pressed: dict[int, str] = {}  # unconfirmed task id -> what pressing "Send it again" brought
        self.warm: set[int] = set()  # users whose first request ended (before the chaos: a warm bot)
        # Reads run on one thread of their own: a read may wait for a killed writer's WAL recovery, and
        # this loop also serves the fake Telegram.
        self._reader: sqlite3.Connection | None = None  # opened on first use: the bot creates the file
        self._reads = ThreadPoolExecutor(max_workers=1)

    async def read(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        def query() -> list[tuple[object, ...]]:
            if self._reader is None:
                self._reader = sqlite3.connect(self.db, timeout=10, check_same_thread=False)
            return self._reader.execute(sql, params).fetchall()

        return await asyncio.get_running_loop().run_in_executor(self._reads, query)

    async def state(self, origin_key: str) -> TaskState | None:
        rows = await self.read("SELECT state FROM tasks WHERE origin_key = ?", origin_key)
        return TaskState(str(rows[0][0])) if rows else None

    async def unfinished(self) -> int:
        done = ", ".join(f"'{s.value}'" for s in TERMINAL)
        rows = await self.read(f"SELECT COUNT(*) FROM tasks WHERE state NOT IN ({done})")
        return int(str(rows[0][0]))

    async def inbox_pending(self) -> int:
        """Updates the inbox still owes a handler: never claimed, or replay-safe and cut off (or running)."""
        rows = await self.read(f"SELECT COUNT(*) FROM processed_updates WHERE {OWED}")
        return int(str(rows[0][0]))

    def close(self) -> None:
        self._reads.shutdown()
        if self._reader is not None:
            self._reader.close()

    # -- the users -------------------------------------------------------------------------------------

    async def user(self, user: FakeUser, chat: FakeChat) -> None:
        rng = random.Random(f"{SEED}:{user.id}")
        k = 0
        loop = asyncio.get_running_loop()
        while self.feeding:
            k += 1
            marker = f"soak{user.id}n{k}"
            sent = self.fake.send_text(user, chat, f"/anime {marker}")
            update_id = next(u["update_id"] for u in reversed(self.fake.updates)
                             if u.get("message", {}).get("message_id") == sent.message_id)  # fmt: skip
            request = Request(user.id, chat.id, sent.message_id, marker, update_id)
            self.requests.append(request)
            if rng.random() < CANCEL_SHARE:
                loop.call_later(rng.uniform(0.0, 2.0), self.fake.send_text, user, chat, "/cancel")
            asked = loop.time()
            while self.feeding:
                state = await self.state(request.origin_key)
                if state in TERMINAL or (state is None and loop.time() - asked > GIVE_UP):
                    break
                await asyncio.sleep(0.1)  # the store has no change signal a test could wait on
            self.warm.add(user.id)
            await asyncio.sleep(rng.uniform(0.0, 0.5))

    # -- the chaos ---------------------------------------------------------------------------------------

    async def _restart(self, worker: Worker) -> None:
        offset = 0.0
        if self.rng.random() < STEP_SHARE:
            offset = self.rng.uniform(*STEP)
            self.chaos.steps += 1
        await self.workers.start(worker, offset)

    async def _freeze(self, worker: Worker) -> None:
        """SIGSTOP past the lease; then SIGCONT, or (sometimes) SIGKILL it while frozen."""
        pid = worker.pid
        os.kill(pid, signal.SIGSTOP)
        worker.frozen = True
        self.chaos.freezes += 1
        await asyncio.sleep(self.rng.uniform(*FREEZE))
        if worker.pid != pid or not worker.frozen:
            return  # killed meanwhile by the main loop
        if self.rng.random() < KILL_FROZEN_SHARE and self.chaos.kills < KILLS:
            await self._kill(worker)
        else:
            os.kill(pid, signal.SIGCONT)
            worker.frozen = False

    async def _kill(self, worker: Worker) -> None:
        self.chaos.kills += 1
        self.chaos.kills_frozen += worker.frozen
        self.chaos.exits[await self.workers.kill(worker)] += 1
        # What the kill interrupted: the states of the tasks the dead worker held (its leases outlive it).
        held = await self.read(
            "SELECT state, delivery FROM tasks WHERE lease_owner = ? AND state IN "
            "('queued', 'submitting', 'submitted', 'polling', 'delivering')",
            worker.name,
        )
        for state, delivery in held:
            self.chaos.hit[f"{state}/{delivery}" if state == "delivering" else str(state)] += 1
        await self._restart(worker)

    async def chaos_loop(self) -> None:
        freezes: set[asyncio.Task[None]] = set()
        victim = self.rng.choice(self.workers.all)
        while self.chaos.kills < KILLS:
            # Not a timing assertion: a random point in the workers' stream of work to strike at.
            await asyncio.sleep(self.rng.uniform(*PAUSE))
            thawed = [w for w in self.workers.all if not w.frozen]
            if len(thawed) == 2 and self.rng.random() < FREEZE_SHARE:
                job = asyncio.create_task(self._freeze(self.rng.choice(thawed)))
                freezes.add(job)
                job.add_done_callback(freezes.discard)
                continue
            # Mostly the last victim again (a crash loop), so the other worker lives long enough to finish
            # work; a frozen one too: killed while frozen.
            if self.rng.random() > STICKY:
                victim = self.rng.choice(self.workers.all)
            await self._kill(victim)
            if self.chaos.kills in BAD_GATEWAY_AT:
                self.fake.fail_next("sendPhoto", ApiError(502, "Bad Gateway"))
                self.chaos.bad_gateways += 1
        await asyncio.gather(*freezes)

    async def settle(self) -> None:
        """Clean restarts for stepped workers, thaw frozen ones, then wait until every update is handled
        (Telegram's confirmed, the inbox's claimed or replayed) and every task has ended."""
        self.feeding = False
        for worker in self.workers.all:
            if worker.frozen:
                os.kill(worker.pid, signal.SIGCONT)
                worker.frozen = False
            if worker.offset:
                self.chaos.exits[await self.workers.kill(worker)] += 1
                await self.workers.start(worker)

        async def quiet() -> bool:  # the inbox too: a clean restart replays what a stepped worker left
            return not self.fake.updates and await self.inbox_pending() == 0 and await self.unfinished() == 0

        try:
            async with asyncio.timeout(SETTLE):
                while True:
                    if await quiet():
                        break
                    await asyncio.sleep(0.2)  # the store has no change signal a test could wait on
        except TimeoutError:
            done = ", ".join(f"'{s.value}'" for s in TERMINAL)
            owed = f"SELECT update_id, state, claimed_by FROM processed_updates WHERE {OWED}"
            inbox = await self.read(owed)
            tasks = await self.read(f"SELECT id, state, lease_owner FROM tasks WHERE state NOT IN ({done})")
            raise AssertionError(
                f"not settled within {SETTLE:.0f} s: Telegram still holds "
                f"{[u['update_id'] for u in self.fake.updates]}, the inbox owes {inbox}, tasks {tasks}"
            ) from None
        await asyncio.sleep(1.0)  # room for a late duplicate to show up, if there were one
        assert await quiet(), "new work appeared after the system had settled"

    def photos_replying_to(self, chat_id: int, message_id: int | None) -> int:
        return sum(
            1 for m in self.fake.sent_messages(chat_id, include_deleted=True)
            if m.photo and m.reply_to is not None and m.reply_to.message_id == message_id
        )  # fmt: skip

    async def send_again(self) -> None:
        """The users of unconfirmed tasks whose photo never reached Telegram press "Send it again" on the
        latest note, as someone who does not see the portrait would, and wait for one photo."""
        rows = await self.read(
            "SELECT id, user_id, chat_id, request_message_id FROM tasks "
            "WHERE state = 'done' AND error_code = ? AND result_file_id IS NULL",
            UNCONFIRMED,
        )
        self.fake.faults.pop("sendphoto", None)  # a 502 still waiting for a sendPhoto is not for the presses
        for task_id, user_id, chat_id, request_id in rows:
            task_id, chat_id = int(str(task_id)), int(str(chat_id))
            request = None if request_id is None else int(str(request_id))
            if self.photos_replying_to(chat_id, request):
                continue  # it had arrived: nothing to press
            data = f"resend:{task_id}"
            notes = [m for m in self.fake.sent_messages(chat_id)
                     if any(d == data for row in m.buttons for _, d in row)]  # fmt: skip
            if not notes:
                self.pressed[task_id] = "no note to press"
                continue
            self.fake.click(int(str(user_id)), notes[-1], data)
            arrived = functools.partial(self.photos_replying_to, chat_id, request)
            try:
                await self.fake.wait_for(lambda: arrived() or None, SENT_AGAIN)  # noqa: B023 - awaited here
            except TimeoutError:
                self.pressed[task_id] = "pressed, no photo came"
            else:
                self.pressed[task_id] = "sent again"


async def _ledger_check(env: dict[str, str]) -> tuple[int, str]:
    """`portrait-bot admin ledger check`, as an operator runs it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main(sys.argv[1:]))",
        "admin", "ledger", "check", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, output.decode()


@dataclass
class Run:
    """Everything the checks read once the processes are gone."""

    fake: FakeTelegram
    people: list[FakeUser]
    requests: list[Request]
    tasks: dict[str, Task]  # by request marker
    strays: dict[object, object]  # tasks (origin key -> id) that belong to no request: must be empty
    inbox: dict[int, str]  # update_id -> its inbox state (received, started, handled)
    ledger: list[tuple[object, ...]]  # (user id, kind) of every task's ledger row
    submits: list[dict[str, object]]  # the emulator's accepted submits
    ledger_check: tuple[int, str]
    chaos: Chaos
    pressed: dict[int, str]  # unconfirmed task id -> what its "Send it again" press brought
    seconds: tuple[float, float]  # the chaos, and the whole test
    replayed: int  # updates whose handler a kill cut off, replayed (from the workers' logs)


async def _run(tmp_path: Path) -> Run:
    started = time.monotonic()
    db = tmp_path / "bot.db"
    fake = FakeTelegram(token=TOKEN)
    people = [fake.add_user(5001 + i, f"User{i}", f"user{i}") for i in range(USERS)]
    chats = [fake.private_chat(user) for user in people]
    async with emulator_process(tmp_path) as emulator_url, serve(fake) as url:
        env = {
            "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "LOG_LEVEL": "INFO",
            "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": f"{url}/bot",
            "VOLC_ACCESSKEY": AK, "VOLC_SECRETKEY": SK, "VOLC_ENDPOINT": emulator_url,
            "PORTRAIT_BOT_DB": str(db), "PORTRAIT_BOT_TIME_SCALE": repr(TIME_SCALE),
            "DAILY_FREE_QUOTA": "1000", "UPSTREAM_QPS": "50", "MAX_CONCURRENT_TASKS": "16",
            "STATUS_EDIT_INTERVAL": "2", "CHAT_SEND_INTERVAL": "0", "USER_RATE_LIMIT": "0",
        }  # fmt: skip
        async with fork_server(tmp_path, env) as workers:
            for worker in workers.all:
                await workers.start(worker)
            soak = Soak(fake, workers, db)
            selfie = draw_selfie(320)
            for user, chat in zip(people, chats, strict=True):
                sent = fake.send_photo(user, chat, selfie)
                try:
                    await fake.wait_for_message(chat, after=sent.message_id, timeout=60)
                except TimeoutError as exc:  # before any chaos: what each process was doing is the clue
                    raise TimeoutError(f"{exc}\n{await workers.report(fake, db)}") from None
            users = [asyncio.create_task(soak.user(u, c)) for u, c in zip(people, chats, strict=True)]
            # A warm bot: the first portraits teach the polling schedule its timings (api_client/learning).
            try:
                await fake.wait_for(lambda: len(soak.warm) == USERS or None, 60)
            except TimeoutError as exc:
                raise TimeoutError(f"{exc}\n{await workers.report(fake, db)}") from None
            chaos_from = time.monotonic()
            await soak.chaos_loop()
            chaos_seconds = time.monotonic() - chaos_from
            await soak.settle()
            await asyncio.gather(*users)
            await soak.send_again()
            for worker in workers.all:
                assert await workers.stop(worker) == 0, f"{worker.name} did not stop cleanly"
        async with httpx.AsyncClient() as http:
            submits = (await http.get(f"{emulator_url}/emulator/submits")).json()["accepted"]
        ledger_check = await _ledger_check(env)

    ids = dict(await soak.read("SELECT origin_key, id FROM tasks"))
    ledger = await soak.read("SELECT user_id, kind FROM ledger WHERE task_id IS NOT NULL")
    inbox = {
        int(str(u)): str(state)
        for u, state in await soak.read("SELECT update_id, state FROM processed_updates")
    }
    soak.close()
    tasks: dict[str, Task] = {}
    async with await Store.open(db, read_only=True) as store:
        for request in soak.requests:
            task_id = ids.pop(request.origin_key, None)
            task = None if task_id is None else await store.tasks.get(int(str(task_id)))
            if task is not None:
                tasks[request.marker] = task
    return Run(fake, people, soak.requests, tasks, ids, inbox, ledger, submits, ledger_check, soak.chaos,
               soak.pressed, (chaos_seconds, time.monotonic() - started), _replayed(tmp_path))  # fmt: skip


def _replayed(logs: Path) -> int:
    return sum(int(found.group(1)) for log in logs.glob("w-*.log")
               for found in REPLAYED.finditer(log.read_text(errors="replace")))  # fmt: skip


class Verdict:
    """The checks, each adding what it found wrong to `problems` and what happened to `outcome`."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.problems: list[str] = []
        self.outcome: Counter[str] = Counter()
        self.untasked: list[str] = []
        self.by_marker = {r.marker: r for r in run.requests}
        self.upstream: Counter[str] = Counter()  # accepted submits per request marker
        self.photos: Counter[tuple[int, int]] = Counter()  # portraits per (chat, request message)
        for request in run.requests:
            for message in run.fake.sent_messages(request.chat_id, include_deleted=True):
                if message.photo and message.reply_to and message.reply_to.message_id == request.message_id:
                    self.photos[(request.chat_id, request.message_id)] += 1

    def photos_for(self, marker: str) -> int:
        request = self.by_marker[marker]
        return self.photos[(request.chat_id, request.message_id)]

    def submitted_once(self) -> None:
        """No request reached the service twice; every accepted submit belongs to a request."""
        for accepted in self.run.submits:
            found = MARKER.search(str(accepted["prompt"]))
            assert found, accepted
            self.upstream[found.group(0)] += 1
        self.problems += [f"{m} submitted {n} times" for m, n in self.upstream.items() if n > 1]
        self.problems += [f"{m} submitted, no such request" for m in self.upstream if m not in self.by_marker]
        if self.run.strays:
            self.problems.append(f"tasks that belong to no request: {self.run.strays}")

    def portraits_at_most_once(self) -> None:
        """At most one portrait per request (each replies to its request), only for requests with a task."""
        for chat_id in {r.chat_id for r in self.run.requests}:
            for message in self.run.fake.sent_messages(chat_id, include_deleted=True):
                if message.photo and message.reply_to is None:
                    self.problems.append(f"a portrait in {chat_id} replies to nothing")
        self.problems += [f"request {key} got {n} portraits" for key, n in self.photos.items() if n > 1]
        self.problems += [f"portrait for {m}, which has no task" for m in self.by_marker
                          if m not in self.run.tasks and self.photos_for(m)]  # fmt: skip

    def requests_without_task(self) -> None:
        """Answered ("still working"). Never: an update the bot was not handed at all, one left unclaimed
        in the inbox, one handled to the end without a task or an answer, or one whose handler a kill cut
        off (`started`) and that was not replayed: /anime is replay-safe (bot/ops/dedupe.py)."""
        fake = self.run.fake
        answered = {(m.chat.id, m.reply_to.message_id): m.body for r in self.run.requests
                    for m in fake.sent_messages(r.chat_id) if m.reply_to is not None}  # fmt: skip
        fetched: Counter[tuple[int, int]] = Counter()
        for call in fake.calls_to("getUpdates", ok=True):
            for update in call.result if isinstance(call.result, list) else []:
                if "message" in update:
                    fetched[(update["message"]["chat"]["id"], update["message"]["message_id"])] += 1
        left = [u for u, state in self.run.inbox.items() if state == "received"]
        if left:
            self.problems.append(f"updates left unclaimed in the inbox: {left}")
        for request in self.run.requests:
            if request.marker in self.run.tasks:
                continue
            key = (request.chat_id, request.message_id)
            answer, state = answered.get(key), self.run.inbox.get(request.update_id)
            if answer:
                self.outcome["no task, answered"] += 1
            elif state == "started":
                self.outcome["no task, handler cut off by a kill"] += 1
                self.problems.append(f"{request.marker} cut off by a kill and never replayed")
            else:
                self.outcome["no task, lost"] += 1
                self.problems.append(f"{request.marker} lost: inbox state {state}, fetched {fetched[key]}x")
            self.untasked.append(
                f"{request.origin_key} {request.marker}: fetched {fetched[key]}x, inbox {state}, {answer!r}"
            )
            if not fetched[key]:
                self.problems.append(f"{request.marker} was never handed to the bot")

    def tasks_ended(self) -> tuple[Counter[int], Counter[int]]:
        """Every task ended delivered (unit spent), refunded, or spent by rule; per user (delivered, rule).
        No exception: an unconfirmed task is spent and has its one photo (the first, or the one its button
        sent); a refunded task has none."""
        delivered: Counter[int] = Counter()
        by_rule: Counter[int] = Counter()
        for marker, task in self.run.tasks.items():
            got, submits = self.photos_for(marker), self.upstream[marker]
            where = f"{marker} (task {task.id}, {task.state.value}, unit {task.reservation}, {got} portraits)"
            if task.upstream_task_id is not None and submits != 1:
                self.problems.append(f"{where}: upstream id {task.upstream_task_id}, {submits} submits")
            pressed = self.run.pressed.get(task.id)
            spent = (task.state, task.reservation) == (TaskState.DONE, "committed")
            if task.error_code == UNCONFIRMED and not spent:
                self.problems.append(f"{where}: unconfirmed, but its unit was not spent")
            if pressed is not None and pressed != "sent again":
                self.problems.append(f"{where}: unconfirmed, its photo never arrived, and then: {pressed}")
            if task.state is TaskState.DONE and got == 1 and task.reservation == "committed":
                self.outcome["delivered"] += 1
                delivered[task.user_id] += 1
                if task.error_code == UNCONFIRMED:
                    self.outcome["  of which unconfirmed, sent again on press" if pressed
                                 else "  of which unconfirmed, had arrived"] += 1  # fmt: skip
            elif task.state is not TaskState.DONE and task.reservation == "committed" and not got:
                self.outcome["spent by rule"] += 1  # ended by the user after the service accepted it
                by_rule[task.user_id] += 1
                if task.upstream_task_id is None:
                    self.problems.append(f"{where}: spent, but the service never accepted it")
            elif task.state is not TaskState.DONE and task.reservation == "refunded" and not got:
                self.outcome[f"refunded: {task.error_code}"] += 1
                self.outcome["  of which accepted upstream"] += bool(submits)
            else:
                self.problems.append(f"{where}: neither delivered, refunded nor spent by rule")
        return delivered, by_rule

    def units_per_user(self, delivered: Counter[int], by_rule: Counter[int]) -> None:
        """From the ledger: units spent == portraits delivered + spent by rule; every other one refunded."""
        kinds: dict[int, Counter[str]] = {}
        for user_id, kind in self.run.ledger:
            kinds.setdefault(int(str(user_id)), Counter())[str(kind)] += 1
        for user in self.run.people:
            counted = kinds.get(user.id, Counter())
            owned = sum(1 for t in self.run.tasks.values() if t.user_id == user.id)
            if counted["commit"] != delivered[user.id] + by_rule[user.id]:
                self.problems.append(f"user {user.id}: {counted['commit']} spent, {delivered[user.id]} "
                                     f"delivered, {by_rule[user.id]} spent by rule")  # fmt: skip
            if counted["reserve"] != owned or counted["commit"] + counted["refund"] != owned:
                self.problems.append(f"user {user.id}: ledger {dict(counted)} for {owned} tasks")
        code, report = self.run.ledger_check
        if code != 0:
            self.problems.append(f"portrait-bot admin ledger check: exit {code}: {report}")

    def summary(self) -> str:
        chaos, (chaos_s, all_s) = self.run.chaos, self.run.seconds
        return (
            f"crash soak: {chaos.kills} kills ({chaos.kills_frozen} frozen), {chaos.freezes} freezes, "
            f"{chaos.steps} clock steps, {chaos.bad_gateways} sendPhoto 502s, exits {dict(chaos.exits)}; "
            f"{len(self.run.requests)} requests, "
            f"{len(self.run.tasks)} tasks, {len(self.run.submits)} accepted submits; "
            f"{dict(sorted(self.outcome.items()))}; cut-off handlers replayed {self.run.replayed}; "
            f"kills hit {dict(chaos.hit)}; "
            f"chaos {chaos_s:.0f} s, all {all_s:.0f} s"
        )


@pytest.mark.slow
@pytest.mark.timeout(300)  # a hang guard: the soak alone took 57-110 s on a loaded 2-core machine
async def test_two_workers_survive_a_hundred_kills_freezes_and_clock_steps(tmp_path: Path) -> None:
    quiet = _NoKilledClients()
    logging.getLogger("uvicorn.error").addFilter(quiet)
    try:
        run = await _run(tmp_path)
    finally:
        logging.getLogger("uvicorn.error").removeFilter(quiet)
    verdict = Verdict(run)
    verdict.submitted_once()
    verdict.portraits_at_most_once()
    verdict.requests_without_task()
    verdict.units_per_user(*verdict.tasks_ended())
    summary = verdict.summary()
    print(summary, "requests with no task:", *verdict.untasked, sep="\n  ")
    assert not verdict.problems, f"{summary}\nlogs: {tmp_path}\n" + "\n".join(verdict.problems)
    assert run.chaos.kills == KILLS and set(run.chaos.exits) == {-signal.SIGKILL}, run.chaos.exits
    assert verdict.outcome["delivered"] > 0
