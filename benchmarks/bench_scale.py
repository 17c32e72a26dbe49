"""Scale-out: the bot with 1, 2 and 3 processes on one PostgreSQL database, as ratios to one process.

    python -m benchmarks.bench_scale [--quick] [--users N] [--processes 1,2,3] [--postgres URL] [--keep DIR]

What runs, each program in a process of its own on this machine (their wall clocks agree):
  - the emulator (`benchmarks.emulator_proc`: `python -m api_client.emulator`'s app with zero queue and
    generation time and one render per distinct request, noting when each task was submitted and done),
    started once for the whole run;
  - per N, a fresh fake Telegram (`python -m fake_telegram --webhook-targets ...`) delivering the updates by
    webhook over the N processes in turn, as a load balancer in front of them would;
  - per N, N bot processes, each `portrait-bot run --webhook` (`benchmarks.bot_proc run --webhook`, which
    adds nothing the bot would notice) with its own `WORKER_ID` and `WEBHOOK_LISTEN`, all on one fresh
    PostgreSQL schema made for that N and dropped afterwards (`--postgres`, default DATABASE_URL or the
    local server's `test` database), sharing one `prepared/` folder as processes on one host share a volume.

Why `run --webhook` in every process and not receivers with `--no-jobs` plus `worker`s: it is what an
operator adds one at a time to scale out (README, "When one process is not enough"): each process takes
updates and runs generations, and on PostgreSQL the upstream limits are shared through the database, so
nothing else changes. A `--no-jobs` receiver leaves a new task to a worker's scan (every 5 s), which would
put the scan interval, not the bot's work, into update -> submit; workers take no updates, so they would
not spread the handlers' share of the work.

Limits: the upstream's are lifted (`UPSTREAM_QPS=1000`, `MAX_CONCURRENT_TASKS=1000`; still counted in the
database's shared rows, whose cost is part of what is measured), and so is Telegram's flood limit in the
bots (PTB's AIORateLimiter with its rates off, as bench_bot's "flood limit off"). Why: the fake enforces no
flood limit, and the shipped limiter paces each process to 30 messages/s on its own, so N processes would
be allowed N x 30/s, a budget Telegram does not give one bot: the ratios would measure the limiter.

For each N, a warm-up batch (3 users per process), then `--users` users (200; 50 with --quick) who each send
a selfie, then `/anime` all at once. Printed per N, with ratios to N=1: generations per second (first
`/anime` queued -> last photo), update -> submit and done -> sendPhoto p50/p95 (as bench_bot measures
them: the fake notes when it handed each update over and when each sendPhoto came, the emulator when each
task was submitted and done), the bots' CPU per generation (summed over the processes, utime + stime from
/proc/<pid>/stat, both windows: selfie and /anime), the fake's and the emulator's, and how busy the
machine's CPUs were during the /anime window (from /proc/stat), so what bounds the scaling shows. Beside
them, from inside the bots (`benchmarks.bot_proc`): the worst process's event-loop lag (LAG_PROBE_FILE,
its whole run), and over the /anime window the PostgreSQL write transactions per generation, their mean
wait for the write locks, the summed BEGIN -> COMMIT time (the schema's advisory lock: one write of any
process at a time) and each process's own write lock held (pool wait and round trips included), both as
shares of the window. Exit status 1 unless every user got exactly one photo, every task is done and the
quota ledger check passes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from benchmarks.bench_bot import AK, SK, TOKEN, collect, finished
from benchmarks.bot_report import Scenario, pct, verdict
from benchmarks.burst_procs import spawn
from benchmarks.procs import HOST, BotProcess, Servers, Snapshot, cpu_seconds, free_port, stop, wait_http
from fake_telegram.load import default_selfie
from storage import Store

SECRET = "bench-scale-secret"
HOOK_URL = "https://bot.example/telegram"  # what setWebhook gets; the fake delivers to each process's port
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


# --- the machine -------------------------------------------------------------------------------------------


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat's first line."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is in user already)
    return total - idle, total


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- one N -------------------------------------------------------------------------------------------------


@dataclass
class Cpu:
    """CPU seconds spent over the measured windows: the bots (summed), the fake, the emulator, the machine."""

    bots: float = 0.0
    fake: float = 0.0
    emulator: float = 0.0
    busy_share: float = 0.0  # of all the machine's CPUs, during the /anime window
    writes: Snapshot = field(default_factory=lambda: Snapshot(0.0, 0, 0))  # the bots' /anime window, summed
    window: float = 0.0  # the /anime window's wall-clock seconds


@dataclass
class Measured:
    processes: int
    scenario: Scenario
    cpu: Cpu
    calls: Counter[str] = field(default_factory=Counter)
    load: str = ""
    lag_p50: float = float("nan")  # the worst process's event-loop lag over its whole run, seconds
    lag_p99: float = float("nan")


class Fleet:
    """N bot processes on one schema, the fake Telegram delivering to them, and a view of their tasks."""

    def __init__(self, n: int, database_url: str, emulator: str, face: Path, workdir: Path) -> None:
        self.n, self.database_url, self.emulator, self.workdir = n, database_url, emulator, workdir
        self.ports = [free_port() for _ in range(n)]
        self.fake_url = f"http://{HOST}:{free_port()}"
        targets = ",".join(f"http://{HOST}:{port}" for port in self.ports)
        fake_port = urlsplit(self.fake_url).port
        self.fake = spawn(["-m", "fake_telegram", "--host", HOST, "--port", str(fake_port), "--token", TOKEN,
                           "--selfie", str(face), "--webhook-targets", targets],
                          log=workdir / "fake.log")  # fmt: skip
        self.bots: list[BotProcess] = []
        self.store: Store | None = None

    def _start_bot(self, index: int) -> BotProcess:
        folder = self.workdir / f"bot-{index + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        env = {
            "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": f"{self.fake_url}/bot",
            "VOLC_ACCESSKEY": AK, "VOLC_SECRETKEY": SK, "VOLC_ENDPOINT": self.emulator,
            "DATABASE_URL": self.database_url, "PORTRAIT_BOT_DB": str(self.workdir / "shared" / "bot.db"),
            "WEBHOOK_URL": HOOK_URL, "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_LISTEN": f"{HOST}:{self.ports[index]}",
            "WORKER_ID": f"scale-{index + 1}", "UPSTREAM_QPS": "1000", "MAX_CONCURRENT_TASKS": "1000",
            "DAILY_FREE_QUOTA": "1000000", "LOG_LEVEL": "INFO", "LAG_PROBE_FILE": str(folder / "lag.json"),
        }  # fmt: skip
        return BotProcess(env, folder, flood_limit=False, profile=None, args=["run", "--webhook"])

    def _ready(self, index: int) -> None:
        bot = self.bots[index]
        try:
            wait_http(f"http://{HOST}:{self.ports[index]}/readyz", bot.process, f"bot {index + 1}")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{bot.tail()}") from None

    async def start(self) -> None:
        await asyncio.to_thread(wait_http, f"{self.fake_url}/fake/stats", self.fake, "the fake Telegram")
        # The first process migrates the fresh schema; the others start once it is in place.
        self.bots.append(self._start_bot(0))
        await asyncio.to_thread(self._ready, 0)
        self.bots += [self._start_bot(index) for index in range(1, self.n)]
        await asyncio.gather(*(asyncio.to_thread(self._ready, index) for index in range(1, self.n)))
        self.store = await Store.open(self.database_url, read_only=True)

    async def stop(self) -> list[str]:
        """Stop everything; the problems of the bots' exits (a non-zero code, with its log's tail)."""
        if self.store is not None:
            await self.store.close()
        problems = []
        for index, bot in enumerate(self.bots):
            code = await asyncio.to_thread(bot.stop)
            if code != 0:
                problems.append(f"bot {index + 1} exited with {code}:\n{bot.tail()}")
        await asyncio.to_thread(stop, self.fake)
        return problems

    def lags(self) -> list[dict[str, float]]:
        """Each bot's event-loop lag percentiles over its whole run (written by its probe at stop)."""
        found = []
        for index in range(len(self.bots)):
            path = self.workdir / f"bot-{index + 1}" / "lag.json"
            if path.exists():
                found.append({key: float(value) for key, value in json.loads(path.read_text()).items()})
        return found

    async def snapshot(self) -> Snapshot:
        """Every bot's CPU and write counters, summed."""
        total = Snapshot(0.0, 0, 0)
        for snapshot in await asyncio.gather(*(bot.snapshot() for bot in self.bots)):
            total = total + snapshot
        return total

    async def quiet(self) -> None:
        await asyncio.gather(*(bot.quiet() for bot in self.bots))

    async def batch(self, servers: Servers, size: int, emulator_pid: int) -> Measured:
        """`size` users send a selfie, then `/anime` at once; both windows measured."""
        scenario, cpu = Scenario(f"{self.n} process(es)"), Cpu()
        batch, _ = await servers.new_batch(size)
        fake_pid = self.fake.pid
        before, fake0, emulator0 = await self.snapshot(), cpu_seconds(fake_pid), cpu_seconds(emulator_pid)
        calls0 = (await servers.stats())["calls"]
        await servers.selfies(batch)
        late = [await servers.wait(batch, "acknowledged")]
        await self.quiet()
        middle, machine0, started = await self.snapshot(), machine_ticks(), time.monotonic()
        await servers.command(batch, "/anime")
        late += [await servers.wait(batch, "photos"), await finished(self.store, poll=0.05)]
        machine1 = machine_ticks()
        scenario.problems += [problem for problem in late if problem]
        await self.quiet()
        after = await self.snapshot()
        cpu.window = time.monotonic() - started
        scenario.upload.add(middle - before, Counter(), 0)
        scenario.generate.add(after - middle, Counter(), 0)
        cpu.bots, cpu.writes = after.cpu - before.cpu, after - middle
        cpu.fake, cpu.emulator = cpu_seconds(fake_pid) - fake0, cpu_seconds(emulator_pid) - emulator0
        busy, total = machine1[0] - machine0[0], machine1[1] - machine0[1]
        cpu.busy_share = busy / total if total else float("nan")
        calls = await servers.calls(calls0, (await servers.stats())["calls"])
        assert self.store is not None
        await collect(servers, self.store, batch, scenario)
        return Measured(self.n, scenario, cpu, calls)


# --- PostgreSQL --------------------------------------------------------------------------------------------


def with_search_path(url: str, schema: str) -> str:
    """`url` with `search_path` set to `schema` (what Store.open, and so every bot process, then works in)."""
    parts = urlsplit(url)
    query = "&".join(part for part in (parts.query, f"search_path={schema}") if part)
    return urlunsplit(parts._replace(query=query))


async def measure(n: int, args: argparse.Namespace, emulator: str, emulator_pid: int, face: Path,
                  workdir: Path) -> Measured:  # fmt: skip
    """One N: a fresh schema, the fake and N bots, the warm-up, the measured batch; everything dropped."""
    schema = f"bench_scale_{secrets.token_hex(4)}"
    print(f"  {n} process(es): schema {schema}, load average {load_average()}", flush=True)
    admin = await asyncpg.connect(args.postgres)
    await admin.execute(f"CREATE SCHEMA {schema}")
    folder = workdir / f"n{n}"
    folder.mkdir(parents=True, exist_ok=True)
    fleet = Fleet(n, with_search_path(args.postgres, schema), emulator, face, folder)
    problems: list[str] = []
    try:
        await fleet.start()
        async with httpx.AsyncClient(timeout=30) as http:
            servers = Servers(http, fleet.fake_url, emulator)
            warm = await fleet.batch(servers, 3 * n, emulator_pid)  # imports, connections, first calls
            measured = await fleet.batch(servers, args.users, emulator_pid)
        problems += [f"warm-up: {p}" for p in warm.scenario.problems]
    finally:
        problems += await fleet.stop()
        lags = fleet.lags()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()
        print(f"  {n} process(es): schema {schema} dropped", flush=True)
    measured.scenario.problems += problems
    measured.load = load_average()
    measured.lag_p50 = max((lag.get("p50", 0.0) for lag in lags), default=float("nan"))
    measured.lag_p99 = max((lag.get("p99", 0.0) for lag in lags), default=float("nan"))
    return measured


# --- the report --------------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "-" if value != value else f"{value * 1000:,.1f}"  # NaN: no value


def _ratio(value: float, reference: float) -> str:
    return "-" if not reference or value != value or reference != reference else f"{value / reference:.2f}x"


def _per_write(writes: Snapshot) -> float:
    return writes.pg_wait / writes.pg_writes if writes.pg_writes else float("nan")


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "-"


def report_rows(results: Sequence[Measured]) -> list[tuple[str, ...]]:
    """One column per N; ratio rows compare each N with the first (one process)."""
    one = results[0]
    rows: list[tuple[str, ...]] = [("", *(f"{m.processes} process(es)" for m in results))]

    def rate(m: Measured) -> float:
        return m.scenario.generations / m.scenario.seconds if m.scenario.seconds else float("nan")

    def per(m: Measured, seconds: float) -> float:
        return m.scenario.per_generation(seconds)

    def row(name: str, cells: list[str]) -> None:
        rows.append((name, *cells))

    row("generations", [f"{m.scenario.generations}" for m in results])
    row("generations/s", [f"{rate(m):.1f}" for m in results])
    row("  ratio to 1 process", [_ratio(rate(m), rate(one)) for m in results])
    for name, attribute in (("update -> submit", "update_to_submit"), ("done -> sendPhoto", "done_to_photo")):
        for q in (50, 95):
            values = [pct(getattr(m.scenario, attribute), q) for m in results]
            row(f"{name} p{q} ms", [_ms(v) for v in values])
            row("  ratio to 1 process", [_ratio(v, values[0]) for v in values])
    row("end to end p50 / p95 ms", [f"{_ms(pct(m.scenario.end_to_end, 50))} / "
                                    f"{_ms(pct(m.scenario.end_to_end, 95))}" for m in results])  # fmt: skip
    bots = [per(m, m.cpu.bots) for m in results]
    row("bots' CPU ms/generation (sum)", [_ms(v) for v in bots])
    row("  ratio to 1 process", [_ratio(v, bots[0]) for v in bots])
    row("  selfie / /anime window", [f"{_ms(per(m, m.scenario.upload.cpu))} / "
                                     f"{_ms(per(m, m.scenario.generate.cpu))}" for m in results])  # fmt: skip
    row("event-loop lag p50 / p99 ms (worst)", [f"{_ms(m.lag_p50)} / {_ms(m.lag_p99)}" for m in results])
    row("PostgreSQL writes/generation", [f"{per(m, m.cpu.writes.pg_writes):.1f}" for m in results])
    row("  wait for the write locks ms/write", [_ms(_per_write(m.cpu.writes)) for m in results])
    row("  BEGIN -> COMMIT, share of window", [_share(m.cpu.writes.pg_held, m.cpu.window) for m in results])
    row("  each bot's write lock held, share", [_share(m.cpu.writes.pg_lock_held / m.processes, m.cpu.window)
                                                 for m in results])  # fmt: skip
    row("fake Telegram CPU ms/generation", [_ms(per(m, m.cpu.fake)) for m in results])
    row("emulator CPU ms/generation", [_ms(per(m, m.cpu.emulator)) for m in results])
    row("machine CPUs busy (/anime window)", [f"{100 * m.cpu.busy_share:.0f} %" for m in results])
    row("Bot API calls/generation", [f"{m.scenario.per_generation(m.calls.total()):.1f}" for m in results])
    row("load average after", [m.load for m in results])
    return rows


def print_report(results: Sequence[Measured]) -> None:
    rows = report_rows(results)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for line in [rows[0], tuple("-" * w for w in widths), *rows[1:]]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


# --- the run -----------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, workdir: Path) -> int:
    face = workdir / "selfie.jpg"
    face.write_bytes(default_selfie())
    results: list[Measured] = []
    port = free_port()
    emulator_url = f"http://{HOST}:{port}"
    emulator = spawn(["-m", "benchmarks.emulator_proc", "--host", HOST, "--port", str(port),
                      "--access-key", AK, "--secret-key", SK], log=workdir / "emulator.log")  # fmt: skip
    try:
        await asyncio.to_thread(wait_http, f"{emulator_url}/bench/marks", emulator, "the emulator")
        for n in args.processes:
            results.append(await measure(n, args, emulator_url, emulator.pid, face, workdir))
    finally:
        await asyncio.to_thread(stop, emulator)
    print_report(results)
    problems = [f"{m.processes} process(es): {p}" for m in results for p in m.scenario.problems]
    return verdict(problems)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_scale", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="50 users per N instead of 200")
    parser.add_argument(
        "--users", type=int, help="users sending a selfie, then /anime at once (200, quick 50)"
    )
    parser.add_argument("--processes", default="1,2,3", help="the numbers of bot processes to run, in turn")
    parser.add_argument(
        "--postgres", default=os.environ.get("DATABASE_URL") or DEFAULT_POSTGRES,
        help="PostgreSQL server (a schema is made and dropped per N; default DATABASE_URL or the local one)",
    )  # fmt: skip
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (bot logs)")
    args = parser.parse_args(argv)
    args.users = args.users or (50 if args.quick else 200)
    args.processes = [int(n) for n in args.processes.split(",") if n]
    print(
        f"{args.users} users per N, N = {', '.join(map(str, args.processes))} `portrait-bot run --webhook` "
        f"processes on one PostgreSQL schema; {os.cpu_count()} CPUs, load average {load_average()}; the "
        "emulator, the fake Telegram and every bot in processes of their own; upstream limits and the "
        "flood limit lifted.",
        flush=True,
    )
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        return asyncio.run(run(args, args.keep))
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        return asyncio.run(run(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
