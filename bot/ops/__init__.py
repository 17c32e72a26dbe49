"""Running the bot as more than one process, and watching it run.

- `process.py`: the three roles (`run` polling, `run --webhook`, `worker`): what each starts, in which
  order, and how SIGTERM stops it.
- `webhook.py`: the HTTP endpoint Telegram posts updates to (secret checked, stored, then answered).
- `polling.py`: getUpdates that confirms a batch only once the inbox stored it.
- `inbox.py`, `dedupe.py`: the durable inbox (store, claim, replay; storage/updates.py) and the gate that
  claims each update once across processes (the design is in dedupe.py).
- `health.py`, `metrics.py`, `http.py`: /healthz, /readyz and /metrics, and the server they share with the
  webhook (or METRICS_PORT); `looplag.py`: the event-loop lag sampler they and the benchmarks read.
- `ratelimit.py`: the Bot API rate limiter, counting 429s.
Only `metrics.py` is imported by the job side (bot/jobs), so it never imports telegram.
"""
