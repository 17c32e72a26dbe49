"""Fault injection: throttling, internal errors, latency, dropped connections, stuck tasks.

``FaultState`` lives on ``app.state.emulator.faults`` and is plain mutable data, so a test can change a rate
between two calls, or script the next answers exactly with ``push(...)`` instead of relying on a rate.

Dropped connections:

* in-process (``httpx.ASGITransport``) the endpoint raises ``httpx.RemoteProtocolError`` ("Server
  disconnected without sending a response."), which the transport re-raises to the client, just as httpx
  reports a real peer hang-up. (With ``raise_app_exceptions=False`` the client would see a 500 instead.)
* behind the real server (``server.py``) the emulator's uvicorn protocol publishes each connection's
  transport in ``CURRENT_TRANSPORT``; the endpoint aborts it, so the client's socket is closed without a
  single response byte.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

import httpx

from api_client.emulator.config import EmulatorConfig


class Fault(StrEnum):
    THROTTLED = "50429"  # QPS limit, HTTP 429
    CONCURRENCY = "50430"  # concurrency limit, HTTP 429
    INTERNAL = "50500"  # internal error, HTTP 500
    DROP = "drop"  # connection dropped before the request is processed
    DROP_AFTER = "drop_after"  # processed (a submit creates its task), then the connection dropped


FAULT_CODES = {Fault.THROTTLED: 50429, Fault.CONCURRENCY: 50430, Fault.INTERNAL: 50500}

CURRENT_TRANSPORT: contextvars.ContextVar[asyncio.BaseTransport | None] = contextvars.ContextVar(
    "emulator_transport", default=None
)


@dataclass
class FaultState:
    """Rates are probabilities per request (drawn from ``rng``); ``actions`` limits which actions they hit."""

    rate_429: float = 0.0
    rate_430: float = 0.0
    rate_500: float = 0.0
    drop_rate: float = 0.0
    drop_after_processing: bool = False
    stuck_rate: float = 0.0
    latency_seconds: float = 0.0
    actions: frozenset[str] | None = None  # None: every action
    rng: random.Random = field(default_factory=random.Random)
    script: deque[tuple[str | None, Fault]] = field(default_factory=deque)

    @classmethod
    def from_config(cls, config: EmulatorConfig) -> FaultState:
        return cls(
            rate_429=config.fault_rate_429,
            rate_430=config.fault_rate_430,
            rate_500=config.fault_rate_500,
            drop_rate=config.drop_rate,
            drop_after_processing=config.drop_after_processing,
            stuck_rate=config.stuck_rate,
            latency_seconds=config.latency_seconds,
            rng=random.Random(config.rng_seed),
        )

    def push(self, fault: Fault, action: str | None = None) -> None:
        """Force ``fault`` on the next request to ``action`` (any action if None), ahead of the rates."""
        self.script.append((action, fault))

    def clear(self) -> None:
        self.rate_429 = self.rate_430 = self.rate_500 = self.drop_rate = self.stuck_rate = 0.0
        self.latency_seconds = 0.0
        self.script.clear()

    def draw(self, action: str) -> Fault | None:
        """The fault for this request, if any: scripted ones first, then one draw against the rates."""
        for index, (wanted, fault) in enumerate(self.script):
            if wanted is None or wanted == action:
                del self.script[index]
                return fault
        if self.actions is not None and action not in self.actions:
            return None
        roll = self.rng.random()
        for fault, rate in (
            (Fault.THROTTLED, self.rate_429),
            (Fault.CONCURRENCY, self.rate_430),
            (Fault.INTERNAL, self.rate_500),
        ):
            if roll < rate:
                return fault
            roll -= rate
        if self.drop_rate and self.rng.random() < self.drop_rate:
            return Fault.DROP_AFTER if self.drop_after_processing else Fault.DROP
        return None

    def draw_stuck(self) -> bool:
        return bool(self.stuck_rate) and self.rng.random() < self.stuck_rate


async def drop_connection() -> None:
    """Hang up on the client without answering (see the module docstring for the two modes)."""
    transport = CURRENT_TRANSPORT.get()
    if transport is None:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
    transport.abort() if isinstance(transport, asyncio.Transport) else transport.close()
    for _ in range(3):  # let connection_lost run, so the server does not answer in our place
        await asyncio.sleep(0)
