"""`python -m fake_telegram --port 8081 [--token T] [--selfie PATH]`: the fake Bot API as a server of its own.

Point a bot at it with `TELEGRAM_API_URL=http://127.0.0.1:8081/bot`; drive its users through the control
API under `/fake/` (see `fake_telegram/control.py`), e.g. a batch of users who send a selfie and `/anime`.
A bot in webhook mode gets its updates POSTed; `--webhook-targets` spreads them over several bot processes.
Runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from fake_telegram.control import create_standalone_app
from fake_telegram.core import DEFAULT_TOKEN
from fake_telegram.fake import FakeTelegram
from fake_telegram.load import ScriptedLoad, default_selfie


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fake_telegram", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the bot token it accepts")
    parser.add_argument("--bot-username", default="PortraitTestBot")
    parser.add_argument(
        "--selfie", type=Path, help="the image scripted users send (default: a generated one)"
    )
    parser.add_argument(
        "--webhook-targets", default="",
        help="comma-separated base URLs (http://host:port) a webhook's deliveries are spread over in turn, "
        "keeping the registered URL's path: a load balancer in front of several bot processes",
    )  # fmt: skip
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    fake = FakeTelegram(token=args.token, bot_username=args.bot_username)
    fake.webhook.targets = [target for target in args.webhook_targets.split(",") if target]
    selfie = args.selfie.read_bytes() if args.selfie else default_selfie()
    app = create_standalone_app(fake, ScriptedLoad(fake, selfie))
    # keep-alive longer than PTB's long poll, so an idle bot's connections are not closed under it
    uvicorn.run(app, host=args.host, port=args.port, lifespan="off", log_level=args.log_level,
                access_log=False, timeout_keep_alive=75)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
