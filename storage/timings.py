"""Learned generation times: one opaque JSON state per kind of request, kept across restarts.

The poll schedule learns how long generations take (api_client.timing) and would forget it on every
restart; this table keeps it. Storage does not interpret the state: it is whatever the model handed over,
stored as JSON and given back as it was, so the model can change its shape without a migration. This repo
is the `TimingStore` that `api_client.learning.PollingLearner.open(store.timings)` expects (matched by
shape: the two packages never import each other).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from .context import StoreContext


class TimingsRepo:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    async def load(self) -> dict[str, dict[str, object]]:
        """Every bucket's state. A row whose JSON is not an object is skipped (the caller starts that bucket
        afresh), so one bad row never stops the bot from starting."""
        async with self._ctx.db.read() as r:
            rows = await r.all("SELECT bucket, state FROM generation_timings ORDER BY bucket")
        states: dict[str, dict[str, object]] = {}
        for row in rows:
            state = json.loads(row["state"])
            if isinstance(state, dict):
                states[row["bucket"]] = state
        return states

    async def save(self, bucket: str, state: Mapping[str, object]) -> None:
        """Replace the bucket's state (one small upsert; the learner saves a steady bucket every 30 s), not
        fsynced: losing the last few samples on power loss only costs the schedule a little learning."""
        if not bucket:
            raise ValueError("bucket must not be empty")
        text = json.dumps(dict(state), separators=(",", ":"), allow_nan=False)
        async with self._ctx.db.transaction(durable=False) as tx:
            await tx.execute(
                "INSERT INTO generation_timings (bucket, state, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (bucket) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                (bucket, text, self._ctx.now()),
            )

    async def forget(self, bucket: str | None = None) -> int:
        """Drop one bucket's state (None: all of them), e.g. after the service changed for good; returns
        how many rows went. The schedule then starts from the fixed one again."""
        async with self._ctx.db.transaction() as tx:
            if bucket is None:
                return await tx.execute("DELETE FROM generation_timings")
            return await tx.execute("DELETE FROM generation_timings WHERE bucket = ?", (bucket,))
