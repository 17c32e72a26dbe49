"""/healthz (is this process alive?) and /readyz (is it doing its job?), as an orchestrator asks them.

Why two: a live process that is not ready yet (starting, or stopping) must not be restarted, only kept out
of the load balancer's rotation; a process whose event loop is stuck or whose database is gone is of no
use and should be restarted.
- alive: the event loop wakes a sleeper on time (`LoopLag`, under LAG_LIMIT_SECONDS) and the database
  answers a trivial read within DATABASE_TIMEOUT_SECONDS;
- ready: the services are open, the job runner started (unless this process runs no jobs), updates come
  in (the webhook is set, or the poller runs), and the process is not stopping.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Final

from bot.app import App
from bot.handlers.context import SERVICES_KEY
from bot.ops import metrics
from bot.ops.looplag import LoopLag
from bot.services import Services

log = logging.getLogger(__name__)

LAG_LIMIT_SECONDS: Final = 5.0
DATABASE_TIMEOUT_SECONDS: Final = 3.0

Report = dict[str, Any]


@dataclass
class ProcessView:
    """What the health and metrics endpoints look at in one running process."""

    app: App
    #: "polling", "webhook" or "worker" (bot/ops/process.py).
    role: str
    lag: LoopLag = field(default_factory=lambda: LoopLag(on_sample=metrics.loop_lag))
    webhook_set: bool = False
    stopping: bool = False
    #: Polling role on PostgreSQL: another process polls and this one waits for the poller lock (poller.py).
    poll_standby: bool = False

    @property
    def services(self) -> Services | None:
        services: Services | None = self.app.bot_data.get(SERVICES_KEY)
        return services


async def liveness(view: ProcessView) -> tuple[bool, Report]:
    loop_ok = view.lag.seconds < LAG_LIMIT_SECONDS
    checks: Report = {"event_loop": {"ok": loop_ok, "lag_seconds": round(view.lag.seconds, 3)}}
    checks["database"] = await _database(view.services)
    return all(check["ok"] for check in checks.values()), checks


async def _database(services: Services | None) -> Report:
    if services is None:
        return {"ok": False, "error": "not open"}
    try:
        await asyncio.wait_for(services.store.gauges.ping(), DATABASE_TIMEOUT_SECONDS)
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {DATABASE_TIMEOUT_SECONDS:.0f} s"}
    except Exception as exc:
        log.warning("health: the database did not answer", exc_info=True)
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


def readiness(view: ProcessView) -> tuple[bool, Report]:
    services = view.services
    checks: Report = {"services_open": services is not None, "not_stopping": not view.stopping}
    if services is not None:
        runner = services.runner
        checks["jobs_started" if runner.takes_jobs else "jobs_off"] = runner.started or not runner.takes_jobs
    if view.role == "webhook":
        checks["webhook_set"] = view.webhook_set
    elif view.role == "polling":
        polling = view.app.updater is not None and view.app.updater.running
        standby = view.poll_standby and not polling  # another process polls; this one runs jobs
        checks["poll_standby" if standby else "polling"] = polling or standby
    checks["application_running"] = view.app.running
    return all(checks.values()), checks
