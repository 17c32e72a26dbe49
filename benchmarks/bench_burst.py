"""A viral burst: N users send `/anime` within a minute, the upstream allows 10 tasks at once.

    python -m benchmarks.bench_burst [--quick] [--users N] [--spread SECONDS] [--generate-seconds S]

Three processes besides this one, so that the bot's figures are its own: the emulator behind the
service's concurrency limit (`benchmarks.burst_upstream`, 10 tasks, a short generation time), the fake
Bot API with Telegram's flood control playing the users (`benchmarks.burst_telegram`: each sends a
selfie captioned `/anime`; 1 in 5 in a group), and the bot itself (`python -m bot`, SQLite with fsync,
`MAX_CONCURRENT_TASKS=10`, its event-loop lag probe on). Time is compressed only upstream (generations
take about a second); Telegram's limits are the real ones, so they, not the upstream, set the pace of the
status messages and results.

Printed: the bot's peak RSS (VmHWM from /proc), event-loop lag p50/p99, the upstream's in-flight tasks
(max, mean until the line drained, share of samples at the limit, refusals), the bot's own line (its task
states read from the database every 0.5 s while requests wait: tasks on upstream places and delivering,
and when places were idle whether the runner was at its cap, only group requests waited, or private ones
did), Telegram 429s by method, status edits per second, delivered and refunded counts, and the wait for a
portrait in private chats and in groups. Goals: RSS < 300 MB, lag p99 < 50 ms, no 429 caused by status
edits, every task delivered or refunded.

Also printed, the hand-over of an upstream place from one task to the next, in stages: seen from the
upstream (poll lag after the finish, a freed place until the next submit arrives, the emulator's answer to
a submit) and from inside the bot (`benchmarks.burst_bot`'s marks: result read, place left, next task
started, its `submitting` commit, its submit).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks import burst_procs as procs
from benchmarks.burst_bot import TRACE_ENV, handover
from benchmarks.burst_telegram import TOKEN
from bot.jobs.queue import GROUP_IN_FLIGHT
from bot.jobs.runner import MIN_EXTRA

AK, SK = "AKBURST", "SKBURST"
TERMINAL = ("done", "failed", "cancelled", "expired")
#: Submitted and not yet sending: on an upstream place, or with its result in hand waiting to be sent (a task
#: stays `submitted` until its photo is about to go out), so fewer than LIMIT of them means a place is free.
UPSTREAM_STATES = ("submitting", "submitted", "polling")
LIMIT = 10  # the upstream's concurrency limit and the bot's MAX_CONCURRENT_TASKS
#: What the runner lets run at once: LIMIT on upstream places plus deliveries (bot/jobs/runner.py).
RUNNING_CAP = LIMIT + max(MIN_EXTRA, 2 * LIMIT)


@dataclass
class Dispatch:
    """The bot's task states sampled while requests wait in line: does its dispatcher leave upstream places
    idle, and if so, is it because the runner is at its cap (results waiting for Telegram hold the other
    places: the chat side sets the pace) or for no reason (a dispatcher bug)?"""

    samples: int = 0
    idle: int = 0  # fewer than LIMIT tasks on upstream places while some waited
    idle_at_cap: int = 0  # ... and the runner had RUNNING_CAP tasks running (upstream + delivering)
    idle_groups_only: int = 0  # ... else only group requests waited (each group runs GROUP_IN_FLIGHT at most)
    upstream_sum: int = 0
    delivering_sum: int = 0
    #: The upstream's own count (tasks accepted, result not read) in the samples where private requests
    #: waited: the hand-over alone, without the groups' turns (each group runs GROUP_IN_FLIGHT at most).
    private_samples: int = 0
    private_in_flight_sum: int = 0
    private_at_limit: int = 0

    def add(self, states: dict[str, int], in_flight: int | None = None) -> None:
        if states.get("queued", 0) == 0:
            return
        if in_flight is not None and states.get("queued_private", 0) > 0:
            self.private_samples += 1
            self.private_in_flight_sum += in_flight
            self.private_at_limit += in_flight >= LIMIT
        upstream = sum(states.get(state, 0) for state in UPSTREAM_STATES)
        delivering = states.get("delivering", 0)
        self.samples += 1
        self.upstream_sum += upstream
        self.delivering_sum += delivering
        if upstream < LIMIT:
            self.idle += 1
            if upstream + delivering >= RUNNING_CAP:
                self.idle_at_cap += 1
            elif states.get("queued_private", 0) == 0:
                self.idle_groups_only += 1

    def summary(self) -> dict[str, float]:
        n = max(1, self.samples)
        return {"samples": self.samples, "idle": self.idle, "idle_at_cap": self.idle_at_cap,
                "idle_groups_only": self.idle_groups_only,
                "mean_upstream": self.upstream_sum / n,
                "mean_delivering": self.delivering_sum / n,
                "private_samples": self.private_samples,
                "private_in_flight": self.private_in_flight_sum / max(1, self.private_samples),
                "private_at_limit": self.private_at_limit / max(1, self.private_samples)}  # fmt: skip


def _unfinished_and_states(db: Path) -> tuple[int, dict[str, int]]:
    """Task counts by state (and `queued_private`: the queued ones in private chats), read-only while the
    bot writes (WAL)."""
    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute("SELECT state, COUNT(*) FROM tasks GROUP BY state").fetchall()
            refunded = conn.execute("SELECT COUNT(*) FROM tasks WHERE reservation = 'refunded'").fetchone()[0]
            private = conn.execute(
                "SELECT COUNT(*) FROM tasks WHERE state = 'queued' AND chat_id > 0"
            ).fetchone()
    except sqlite3.Error:
        return -1, {}
    states = {str(state): int(count) for state, count in rows}
    unfinished = sum(n for s, n in states.items() if s not in TERMINAL)
    states["refunded"] = int(refunded)
    states["queued_private"] = int(private[0])
    return unfinished, states


def run(
    users: int, spread: float, generate: float, timeout: float, keep: Path | None = None
) -> dict[str, Any]:
    """One burst in `keep` (kept: the bot's database and the three logs) or in a temporary folder that is
    removed afterwards (a 10,000-user run leaves tens of MB)."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp:
            return _run(Path(tmp), users, spread, generate, timeout)
    keep.mkdir(parents=True, exist_ok=True)
    return _run(keep, users, spread, generate, timeout)


def _run(work: Path, users: int, spread: float, generate: float, timeout: float) -> dict[str, Any]:
    up_port, tg_port = procs.free_port(), procs.free_port()
    up_url, tg_url = f"http://{procs.HOST}:{up_port}", f"http://{procs.HOST}:{tg_port}"
    upstream = procs.spawn(["-m", "benchmarks.burst_upstream", "--port", str(up_port), "--access-key", AK,
                            "--secret-key", SK, "--max-tasks", str(LIMIT),
                            "--generate-seconds", str(generate)],
                           log=work / "upstream.log")  # fmt: skip
    telegram = procs.spawn(["-m", "benchmarks.burst_telegram", "--port", str(tg_port), "--users", str(users),
                            "--spread", str(spread)], log=work / "telegram.log")  # fmt: skip
    bot = None
    try:
        procs.started(upstream, up_url)
        procs.started(telegram, tg_url)
        lag_file, db, trace = work / "lag.json", work / "bot.db", work / "trace.json"
        env = procs.child_env({
            "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": f"{tg_url}/bot", "VOLC_ACCESSKEY": AK,
            "VOLC_SECRETKEY": SK, "VOLC_ENDPOINT": up_url, "PORTRAIT_BOT_DB": str(db),
            "MAX_CONCURRENT_TASKS": str(LIMIT), "UPSTREAM_QPS": "50", "LAG_PROBE_FILE": str(lag_file),
            "WORKER_ID": "bench-burst", "LOG_LEVEL": "WARNING", TRACE_ENV: str(trace),
        })  # fmt: skip
        bot = procs.spawn(["-m", "benchmarks.burst_bot"], env=env, log=work / "bot.log")
        started = time.monotonic()
        while not db.exists() or _unfinished_and_states(db)[0] < 0:  # the bot's schema is in place
            if bot.poll() is not None or time.monotonic() - started > 60:
                log_tail = (work / "bot.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the bot did not start (--keep DIR keeps its log):\n{log_tail}")
            time.sleep(0.1)
        time.sleep(1.0)  # its first getUpdates
        httpx.get(f"{tg_url}/bench/start", timeout=10)
        t0 = time.monotonic()
        peak_rss, dispatch = 0.0, Dispatch()
        while True:
            time.sleep(0.5)
            peak_rss = max(peak_rss, procs.peak_rss_mb(bot.pid) or 0.0)
            sent = procs.stats(tg_url)["sent"]
            unfinished, states = _unfinished_and_states(db)
            dispatch.add(states, httpx.get(f"{up_url}/bench/now", timeout=10).json()["in_flight"])
            total = sum(n for s, n in states.items() if s not in ("refunded", "queued_private"))
            if sent >= users and total >= users and unfinished == 0:
                break
            if time.monotonic() - t0 > timeout or bot.poll() is not None:
                print(f"  stopped waiting: {states} after {time.monotonic() - t0:.0f} s", flush=True)
                break
        elapsed = time.monotonic() - t0
        peak_rss = max(peak_rss, procs.peak_rss_mb(bot.pid) or 0.0)
        time.sleep(2.0)  # the last status edits after the final photos
        procs.stop(bot)
        bot = None
        return {
            "users": users, "elapsed": elapsed, "peak_rss_mb": peak_rss,
            "lag": json.loads(lag_file.read_text()) if lag_file.exists() else {},
            "upstream": procs.stats(up_url), "telegram": procs.stats(tg_url),
            "states": _unfinished_and_states(db)[1], "dispatch": dispatch.summary(),
            "handover": handover(json.loads(trace.read_text())) if trace.exists() else {},
        }  # fmt: skip
    finally:
        for process in (bot, telegram, upstream):
            if process is not None:
                procs.stop(process)


def report(r: dict[str, Any]) -> None:
    lag, up, tg, states = r["lag"], r["upstream"], r["telegram"], r["states"]
    ms = {k: 1000 * float(lag.get(k, 0.0)) for k in ("p50", "p99", "max")}
    print(f"  {r['users']} users, all settled in {r['elapsed']:.0f} s")
    print(f"  bot peak RSS: {r['peak_rss_mb']:.0f} MB (goal < 300)")
    print(f"  event-loop lag: p50 {ms['p50']:.1f} ms, p99 {ms['p99']:.1f} ms, max {ms['max']:.0f} ms "
          f"({lag.get('samples', 0)} samples; goal p99 < 50)")  # fmt: skip
    print(f"  upstream in flight (limit {up['limit']}): max {up['max_in_flight']}, "
          f"mean {up['mean_in_flight']:.2f} "
          f"until the line drained, at the limit {100 * up['at_limit_share']:.0f} % of the time; "
          f"{up['submits']} submits, {up['refused']} refused (50430)")  # fmt: skip
    refused = tg["refused_429"]
    edits_429 = sum(n for key, n in refused.items() if key.startswith("editMessageText"))
    d = r["dispatch"]
    others = d["idle"] - d["idle_at_cap"] - d["idle_groups_only"]
    print(f"  the bot's line, {d['samples']} samples while requests waited: submitted, not yet sending, "
          f"mean {d['mean_upstream']:.2f} (limit {LIMIT}), sending mean {d['mean_delivering']:.1f}; "
          f"places idle in {d['idle']} samples: {d['idle_at_cap']} with the runner at its cap of "
          f"{RUNNING_CAP} (results waiting for Telegram), {d['idle_groups_only']} with only group requests "
          f"waiting (at most {GROUP_IN_FLIGHT} per group), {others} with private ones waiting")  # fmt: skip
    busy, at_limit = d["private_in_flight"], 100 * d["private_at_limit"]
    print(f"  upstream in flight while private requests waited ({d['private_samples']} samples): "
          f"mean {busy:.2f}, at the limit in {at_limit:.0f} % of them")  # fmt: skip
    print(f"  Telegram 429s: {sum(refused.values())} (status edits: {edits_429}) {refused or ''}")
    stages = {
        "poll lag (finished -> done read)": up.get("poll_lag", {}),
        "place freed -> next submit arrives": up.get("free_to_submit", {}),
        "the emulator answering a submit": up.get("submit_answer", {}),
        **r["handover"],
    }
    print("  the hand-over of a place, ms (p50 / p90 / mean, n):")
    at_cap = stages.pop("freed_at_cap", {}).get("n", 0)
    print(f"    places freed while the runner was at its cap (nothing could start there): {at_cap:.0f}")
    for stage, figures in stages.items():
        if figures.get("n"):
            p50, p90, mean = figures["p50_ms"], figures["p90_ms"], figures["mean_ms"]
            print(f"    {stage}: {p50:.1f} / {p90:.1f} / {mean:.1f} ({figures['n']:.0f})")
    print(f"  status edits: max {tg['edits_max_per_s']}/s, mean {tg['edits_mean_per_s']:.1f}/s; "
          f"queue-place edits {tg['place_edits']} (max {tg['place_edits_max_per_s']}/s); "
          f"all chat requests max {tg['requests_max_per_s']}/s")  # fmt: skip
    print(f"  delivered {tg['delivered']} of {tg['sent']}; tasks {states}")
    for kind in ("private", "group"):
        w = tg[f"wait_{kind}"]
        if w.get("n"):
            print(f"  wait for the portrait, {kind}: p50 {w['p50']:.0f} s, max {w['max']:.0f} s ({w['n']})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_burst", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="500 users over 15 s")
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--spread", type=float, default=None, help="seconds over which the requests arrive")
    parser.add_argument("--generate-seconds", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (bot database, logs)")
    args = parser.parse_args(argv)
    users = args.users or (500 if args.quick else 10_000)
    spread = args.spread or (15.0 if args.quick else 60.0)
    each = args.generate_seconds
    print(f"viral burst: {users} users over {spread:.0f} s, upstream 10 at once, ~{each:g} s each")
    result = run(users, spread, args.generate_seconds, args.timeout, keep=args.keep)
    report(result)
    settled = result["states"].get("done", 0) + result["states"].get("refunded", 0)
    return 0 if settled >= users else 1


if __name__ == "__main__":
    raise SystemExit(main())
