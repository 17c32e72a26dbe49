"""Prometheus metrics of one process: what an operator graphs and alerts on.

Why one module with plain functions: the places that count (the job runner, the task table, the upstream
client, the Telegram rate limiter, the update gate) each call one function here in one line, and know
nothing about Prometheus. The metrics live in this module's own registry, process-wide as Prometheus
expects (each process is scraped on its own; sum across processes in the queries).

Counters count what *this* process did since it started; the task gauges are read from the database on
each scrape (storage/gauges.py: unfinished tasks only, an indexed query), so every process reports the
same global numbers there.
"""

from __future__ import annotations

import logging
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector

from storage import Store, Task

__all__ = ["CONTENT_TYPE", "REGISTRY", "render"]

log = logging.getLogger(__name__)

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
PREFIX: Final = "portrait_bot"
# No `_created` twin of every counter: start times say nothing on a dashboard.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY: Final = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)


def _counter(name: str, text: str, labels: tuple[str, ...] = ()) -> Counter:
    return Counter(f"{PREFIX}_{name}", text, labels, registry=REGISTRY)


def _gauge(name: str, text: str, labels: tuple[str, ...] = ()) -> Gauge:
    return Gauge(f"{PREFIX}_{name}", text, labels, registry=REGISTRY)


INFO = Info(PREFIX, "This process: its role and worker id.", registry=REGISTRY)
UPDATES = _counter("updates", "Telegram updates taken, by type (message, callback_query, ...).", ("type",))
DUPLICATES = _counter("duplicate_updates", "Updates dropped because some process had already taken them.")
REPLAYED = _counter("replayed_updates", "Stored updates replayed: the process that received them stopped.")
TASKS = _gauge("tasks", "Unfinished tasks by state (database-wide).", ("state",))
QUEUE_DEPTH = _gauge("queue_depth", "Tasks waiting to be submitted (database-wide).")
QUEUE_OLDEST = _gauge("queue_oldest_age_seconds", "Seconds the oldest task waiting to be submitted waited.")
DATABASE_UP = _gauge("database_up", "1 when the last scrape could read the database.")
FINISHED = _counter("tasks_finished", "Tasks this process ended, by state.", ("state",))
UNITS = _counter("quota_units", "Quota units settled here: spent (delivered) or refunded.", ("outcome",))
UPSTREAM_SECONDS = Histogram(
    f"{PREFIX}_upstream_request_seconds", "Upstream API call attempts, by action, answered or not.",
    ("action",), buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0), registry=REGISTRY,
)  # fmt: skip
UPSTREAM_ERRORS = _counter(
    "upstream_errors", "Upstream attempts that failed, by action and code (business, http_NNN or transport).",
    ("action", "code"),
)  # fmt: skip
TELEGRAM_429 = _counter("telegram_rate_limited", "Bot API calls answered 429, by method.", ("method",))
TELEGRAM_SHARED = _counter(
    "telegram_shared_sends", "Bot API sends paced by the send rate all processes share (PostgreSQL): drawn "
    "from it, or let through on this process's own limit while the database was away (failed_open).",
    ("outcome",),
)  # fmt: skip
TELEGRAM_SHARED_WAIT = _counter(
    "telegram_shared_wait_seconds", "Seconds Bot API sends waited for the shared send rate, summed."
)
LEASES = _counter(
    "lease_takeovers", "Task leases that changed hands: taken here from a dead worker, or lost to another.",
    ("direction",),
)  # fmt: skip
POLLER = _gauge("poller", "1 while this process is the one taking Telegram updates by long polling.")
LOOP_LAG = _gauge("event_loop_lag_seconds", "The event loop's last measured lag.")

for _direction in ("taken", "lost"):
    LEASES.labels(_direction)
for _outcome in ("spent", "refunded"):
    UNITS.labels(_outcome)
for _outcome in ("drawn", "failed_open"):
    TELEGRAM_SHARED.labels(_outcome)


# -- the hooks: one call each where it happens -------------------------------------------------------------


def describe_process(role: str, worker_id: str) -> None:
    INFO.info({"role": role, "worker_id": worker_id})


def update_taken(kind: str) -> None:
    UPDATES.labels(kind).inc()


def duplicate_update() -> None:
    DUPLICATES.inc()


def updates_replayed(count: int) -> None:
    REPLAYED.inc(count)


def task_moved(task: Task) -> None:
    """After a state transition: finished tasks and their settled unit (the transition settles it)."""
    if task.finished_at is None:
        return
    FINISHED.labels(task.state.value).inc()
    if task.reservation == "committed":
        UNITS.labels("spent").inc()
    elif task.reservation == "refunded":
        UNITS.labels("refunded").inc()


def upstream_attempt(action: str, seconds: float, status: int | None, code: int | None) -> None:
    """api_client's AttemptObserver: latency of every attempt, and the code of every failed one."""
    UPSTREAM_SECONDS.labels(action).observe(seconds)
    if code is not None or (status is not None and status >= 400):
        UPSTREAM_ERRORS.labels(action, str(code if code is not None else f"http_{status}")).inc()
    elif status is None:
        UPSTREAM_ERRORS.labels(action, "transport").inc()


def telegram_rate_limited(method: str) -> None:
    TELEGRAM_429.labels(method).inc()


def telegram_shared_send(drawn: bool, waited: float) -> None:
    """A send that asked the shared send rate: whether it got a token (else it failed open), and its wait."""
    TELEGRAM_SHARED.labels("drawn" if drawn else "failed_open").inc()
    TELEGRAM_SHARED_WAIT.inc(waited)


def lease_taken() -> None:
    LEASES.labels("taken").inc()


def lease_lost() -> None:
    LEASES.labels("lost").inc()


def loop_lag(seconds: float) -> None:
    LOOP_LAG.set(seconds)


# -- the scrape --------------------------------------------------------------------------------------------


async def render(store: Store | None) -> bytes:
    """The exposition text, with the database gauges read now (a failed read only zeroes database_up)."""
    if store is not None:
        try:
            gauges = await store.gauges.tasks()
        except Exception:
            log.warning("metrics: could not read the task gauges", exc_info=True)
            DATABASE_UP.set(0)
        else:
            DATABASE_UP.set(1)
            for state, count in gauges.by_state.items():
                TASKS.labels(state).set(count)
            QUEUE_DEPTH.set(gauges.queued)
            QUEUE_OLDEST.set(gauges.oldest_queued_age)
    return generate_latest(REGISTRY)
