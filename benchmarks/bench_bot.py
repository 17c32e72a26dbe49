"""Bot overhead per generation, each program in its own process: `python -m benchmarks.bench_bot [--quick]`.

Three servers, each a process of its own on this machine (so their wall clocks, `time.time`, agree):
  1. the emulator (`benchmarks.emulator_proc`): zero queue and generation time, one render per distinct
     request; it notes when each SubmitTask arrived and when each task was first answered `done`;
  2. the fake Telegram (`python -m fake_telegram`), whose scripted users each send a selfie, then `/anime`
     all at once; it notes when it handed each update to the bot (getUpdates) and when each sendPhoto came;
  3. the bot: `portrait-bot run` (`benchmarks.bot_proc`, which only adds counters) with its own SQLite
     file, production settings except the endpoints, no upstream QPS or concurrency limit and free quota
     for everyone.
The driver (this process) only says when each phase starts and reads the figures afterwards.

Per generation, two windows: the selfie (sent -> acknowledged, the bot downloads and decodes it) and
`/anime` (sent -> the photo delivered, every task finished in the database). For each window the bot's CPU
(utime + stime from /proc/<pid>/stat, every thread), its SQLite commits and thread hops (counted inside its
process), and its Bot API calls (the fake's log) are taken after the bot has gone quiet. Intervals:
  update -> submit:   getUpdates hands `/anime` to the bot -> the SubmitTask request reaches the emulator
  done -> sendPhoto:  the emulator answers `done` -> the sendPhoto request reaches the fake
  queued -> handed:   the fake queues `/anime` -> a getUpdates answer carries it (the polling cadence)
  end to end:         queued -> sendPhoto (includes the client's first poll wait, 1.5 s by default)
Image preparation (the upload check `check_image`, the generation's `prepare_image`) is timed on the same
selfie in this process and printed beside the bot's CPU, which includes it.

Scenarios: 1 user at a time (`--rounds` users one after the other, for latency without queueing and
enough CPU ticks to count), N users at once with Telegram's flood limit as the bot ships it (PTB's
AIORateLimiter: 30 messages/s overall), and N at once with that limiter's rates lifted (the bot's own
overhead). The baseline, measured in the same run against the same two servers, each from its own process
(`benchmarks.baseline_worker`): raw PortraitClient submit + wait and raw sendPhoto uploads, one at a time
and N at once. Ratios are bot / baseline. For 1 user at a time a second, fuller baseline follows the bot's
run: the floor (`benchmarks.floor_worker`, driven by `bot_baselines.run_floor`), a minimal program with no
framework doing a generation's whole I/O for as many generations: the same Bot API calls and file download
(one aiohttp session), submit + GetResult through PortraitClient, and per window the SQLite commits (as
many fsynced) and thread hops the bot was counted making. The floor is what any Python program keeping
those exchanges and commits costs on this machine; "own / floor" (the bot's own CPU, image work apart, over
the floor's) is how many times that the bot spends. Exit status 1 unless every user got exactly one photo,
every task is done and the quota ledger check passes. `--profile PATH` adds a run under cProfile (N at
once, or `--profile-users K`: batches of K, 1 for the single-user goal) and prints where the bot's event
loop thread spent its time, by library and by function.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks.bot_baselines import image_cost, run_baseline, run_floor, sql_spec
from benchmarks.bot_report import Baseline, Scenario, goals, print_profile, print_report, verdict
from benchmarks.procs import TIMEOUT, BotProcess, Servers, server
from fake_telegram.load import default_selfie
from storage import Store, TaskState

TOKEN = "424242424:BENCH-bot-token"
AK, SK = "AKbench", "SKbench"
PROFILED_GENERATIONS = 20  # at least this many in the profiled run (batches of --profile-users)


# --- one bot process, batches of users ----------------------------------------------------------------------


async def finished(store: Store | None, *, poll: float) -> str | None:
    """None once the database has no unfinished task; else how many are left after TIMEOUT."""
    assert store is not None
    deadline = time.monotonic() + TIMEOUT
    while left := await store.tasks.unfinished():
        if time.monotonic() > deadline:
            states = Counter(task.state.value for task in left)
            return f"{len(left)} task(s) unfinished after {TIMEOUT:.0f} s: {dict(states)}"
        await asyncio.sleep(poll)
    return None


class BotRun:
    """One bot process and the read-only view of its database."""

    def __init__(self, servers: Servers, workdir: Path, *, flood_limit: bool, profile: Path | None = None):
        self.servers = servers
        workdir.mkdir(parents=True, exist_ok=True)
        self.db = workdir / "bot.db"
        env = {
            "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": f"{servers.fake}/bot",
            "VOLC_ACCESSKEY": AK, "VOLC_SECRETKEY": SK, "VOLC_ENDPOINT": servers.emulator,
            "PORTRAIT_BOT_DB": str(self.db), "UPSTREAM_QPS": "1000", "MAX_CONCURRENT_TASKS": "1000",
            "DAILY_FREE_QUOTA": "1000000", "LOG_LEVEL": "INFO", "WORKER_ID": "bench",
        }  # fmt: skip
        self.bot = BotProcess(env, workdir, flood_limit=flood_limit, profile=profile)
        self.store: Store | None = None

    async def start(self) -> None:
        deadline = time.monotonic() + 60
        while (await self.servers.stats())["waiting_polls"] < 1:
            if not self.bot.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the bot did not start polling:\n{self.bot.tail()}")
            await asyncio.sleep(0.05)
        self.store = await Store.open(self.db, read_only=True)

    async def stop(self) -> int:
        if self.store is not None:
            await self.store.close()
        return self.bot.stop()

    async def batch(self, size: int, scenario: Scenario) -> None:
        """`size` users send a selfie, then `/anime` at once; both windows measured into `scenario`."""
        servers, bot = self.servers, self.bot
        batch, _ = await servers.new_batch(size)
        before, stats = await bot.snapshot(), await servers.stats()
        await servers.selfies(batch)
        late = [await servers.wait(batch, "acknowledged")]
        await bot.quiet()
        middle, stats_middle = await bot.snapshot(), await servers.stats()
        await servers.command(batch, "/anime")
        late += [await servers.wait(batch, "photos"), await finished(self.store, poll=0.02)]
        scenario.problems += [problem for problem in late if problem]
        await bot.quiet()
        after, stats_after = await bot.snapshot(), await servers.stats()
        scenario.upload.add(
            middle - before, await servers.calls(stats["calls"], stats_middle["calls"]),
            stats_middle["downloads"] - stats["downloads"],
        )  # fmt: skip
        scenario.generate.add(
            after - middle, await servers.calls(stats_middle["calls"], stats_after["calls"]),
            stats_after["downloads"] - stats_middle["downloads"],
        )  # fmt: skip
        assert self.store is not None
        await collect(servers, self.store, batch, scenario)


async def collect(servers: Servers, store: Store, batch: int, scenario: Scenario) -> None:
    """Join the fake's per-user times, the emulator's marks and the bot's tasks; check each user."""
    users = await servers.report(batch)
    submitted, done = await servers.marks()
    firsts, lasts = [], []
    for user in users:
        tasks = await store.tasks.recent_for_user(user["user_id"], limit=5)
        photos = user["photos"]
        if len(photos) != 1 or len(tasks) != 1 or tasks[0].state is not TaskState.DONE:
            states = [t.state.value for t in tasks]
            scenario.problems.append(f"user {user['user_id']}: {len(photos)} photo(s), tasks {states}")
            continue
        upstream = tasks[0].upstream_task_id or ""
        handed, queued = user["command_handed_out_at"], user["command_queued_at"]
        if upstream not in submitted or upstream not in done or handed is None:
            scenario.problems.append(f"user {user['user_id']}: task {upstream!r} not seen submitted+done")
            continue
        scenario.generations += 1
        scenario.update_to_submit.append(submitted[upstream] - handed)
        scenario.queued_to_handed.append(handed - queued)
        scenario.done_to_photo.append(photos[0] - done[upstream])
        scenario.end_to_end.append(photos[0] - queued)
        firsts.append(queued)
        lasts.append(photos[0])
    if firsts:
        scenario.seconds += max(lasts) - min(firsts)
    check = await store.quotas.check()
    if not check.ok:
        scenario.problems.append("ledger check: " + "; ".join(check.problems[:5]))


async def run_bot(
    servers: Servers, workdir: Path, plan: list[tuple[str, int, int]], *, flood_limit: bool,
    profile: Path | None = None,
) -> list[Scenario]:  # fmt: skip
    """One bot process: a warm-up batch, then per (label, rounds, users) `rounds` batches of `users`."""
    run = BotRun(servers, workdir, flood_limit=flood_limit, profile=profile)
    scenarios: list[Scenario] = []
    try:
        await run.start()
        warm = Scenario("warm-up")
        await run.batch(3, warm)  # imports, connections, first-call paths, the emulator's one render
        scenarios.append(warm)
        for label, rounds, users in plan:
            scenario = Scenario(label)
            if profile is not None:
                run.bot.toggle_profile()
            for _ in range(rounds):
                await run.batch(users, scenario)
            if profile is not None:
                run.bot.toggle_profile()
                await _until_file(profile)
            scenarios.append(scenario)
    finally:
        code = await run.stop()
    if code != 0 and scenarios:
        scenarios[-1].problems.append(f"the bot exited with {code}:\n{run.bot.tail()}")
    return scenarios


async def _until_file(path: Path) -> None:
    """The profile is written by the bot on its signal: poll for it (another process's file)."""
    deadline = time.monotonic() + 30
    while not await asyncio.to_thread(path.exists) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


# --- the run ----------------------------------------------------------------------------------------------


async def _scenarios(
    servers: Servers, args: argparse.Namespace, workdir: Path, face: Path
) -> tuple[list[Scenario], list[Scenario], list[Scenario], tuple[Baseline, Baseline]]:
    """The baselines, then the bot as shipped, with the flood limit lifted and (optionally) profiled."""
    result = workdir / "result.jpg"
    _, one_chats = await servers.new_batch(args.rounds)
    _, many_chats = await servers.new_batch(args.users)
    telegram_url = f"{servers.fake}/bot{TOKEN}"
    base_one = run_baseline("1 user", servers, telegram_url, one_chats, face, result, 1)
    base_many = run_baseline(
        f"{args.users} at once", servers, telegram_url, many_chats, face, result, args.users
    )
    plan = [(f"1 user x{args.rounds}", args.rounds, 1)] if "one" in args.scenarios else []
    plan += [(f"{args.users} at once", 1, args.users)] if "many" in args.scenarios else []
    shipped = await run_bot(servers, workdir / "bot-shipped", plan, flood_limit=True) if plan else []
    if "one" in args.scenarios and len(shipped) > 1 and shipped[1].generations:
        one = shipped[1]  # the floor does what its generations did: as many, with their commits and hops
        selfie_sql, anime_sql = sql_spec(one.upload, one.generations), sql_spec(one.generate, one.generations)
        floor = await run_floor(
            servers, telegram_url, face, workdir / "floor", args.rounds, selfie_sql=selfie_sql,
            anime_sql=anime_sql,
        )  # fmt: skip
        base_one.floor = floor.floor
        one.problems += floor.problems
    lifted = []
    if "lifted" in args.scenarios:
        label = f"{args.users} at once, flood limit off"
        lifted = await run_bot(servers, workdir / "bot-lifted", [(label, 1, args.users)], flood_limit=False)
    profiled: list[Scenario] = []
    if args.profile:
        profiled = await run_bot(
            servers,
            workdir / "bot-profiled",
            [("profiled", math.ceil(PROFILED_GENERATIONS / args.profile_users), args.profile_users)],
            flood_limit=False,
            profile=args.profile,
        )
    return shipped, lifted, profiled, (base_one, base_many)


@contextmanager
def two_servers(face: Path) -> Iterator[tuple[str, str]]:
    """The emulator and the fake Telegram (its users sending `face`) as this benchmark runs them, each in a
    process of its own: their base URLs, (emulator, fake)."""
    with (
        server("benchmarks.emulator_proc", ["--access-key", AK, "--secret-key", SK], "/bench/marks",
               "the emulator") as emulator,
        server("fake_telegram", ["--token", TOKEN, "--selfie", str(face)], "/fake/stats",
               "the fake Telegram") as fake,
    ):  # fmt: skip
        yield emulator, fake


async def run(args: argparse.Namespace, workdir: Path) -> int:
    selfie = default_selfie()
    face = workdir / "selfie.jpg"
    face.write_bytes(selfie)
    images = await image_cost(selfie, args.image_calls)
    problems: list[str] = []
    with two_servers(face) as (emulator, fake):
        async with httpx.AsyncClient(timeout=30) as http:
            servers = Servers(http, fake, emulator)
            shipped, lifted, profiled, bases = await _scenarios(servers, args, workdir, face)
    base_one, base_many = bases
    measured = [*shipped[1:], *lifted[1:]]
    print_report([(s, base_one if s.label.startswith("1 user") else base_many) for s in measured], images)
    if "one" in args.scenarios and len(shipped) > 1:
        print(goals(shipped[1], images))
    if args.profile and len(profiled) > 1:
        print_profile(args.profile, max(1, profiled[1].generations), args.top, args.profile_users)
    for scenario in [*shipped, *lifted, *profiled]:
        problems += [f"{scenario.label}: {p}" for p in scenario.problems]
    for base in bases:
        if base.failures:
            problems.append(f"baseline {base.label}: {base.failures} call(s) failed")
    return verdict(problems)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_bot", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="50 users at once, 5 single-user rounds")
    parser.add_argument("--users", type=int, help="users sending /anime at once (default 200, quick 50)")
    parser.add_argument("--rounds", type=int, help="single-user generations one after another (20, quick 5)")
    parser.add_argument("--profile", type=Path, help="also profile a run of N at once; pstats file here")
    parser.add_argument("--profile-users", type=int, help="users at once when profiling (default N)")
    parser.add_argument("--top", type=int, default=25, help="profile lines to print")
    parser.add_argument(
        "--scenarios",
        default="one,many,lifted",
        help="which of one (1 user at a time), many (N at once), lifted (N, no flood limit)",
    )
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (bot logs, databases)")
    args = parser.parse_args(argv)
    args.scenarios = set(args.scenarios.split(","))
    args.users = args.users or (50 if args.quick else 200)
    args.rounds = args.rounds or (5 if args.quick else 20)
    args.profile_users = args.profile_users or args.users
    args.image_calls = 5 if args.quick else 20
    print(
        f"{args.users} users at once and 1 user x{args.rounds}, {os.cpu_count()} CPUs; the emulator, the "
        "fake Telegram, the bot and each baseline in processes of their own. Bot: production settings except "
        "UPSTREAM_QPS=1000, MAX_CONCURRENT_TASKS=1000, DAILY_FREE_QUOTA=1000000.",
        flush=True,
    )
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        return asyncio.run(run(args, args.keep))
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    raise SystemExit(main())
