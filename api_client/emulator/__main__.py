"""``python -m api_client.emulator --host 127.0.0.1 --port 8080 --access-key AK --secret-key SK ...``"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from api_client.emulator.config import EmulatorConfig
from api_client.emulator.server import run


def parse_args(argv: Sequence[str] | None = None) -> tuple[EmulatorConfig, str, int, str]:
    parser = argparse.ArgumentParser(prog="python -m api_client.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--access-key", default=os.environ.get("VOLC_ACCESSKEY", "AK"))
    parser.add_argument("--secret-key", default=os.environ.get("VOLC_SECRETKEY", "SK"))
    parser.add_argument("--queue-seconds", type=float, default=1.0)
    parser.add_argument("--generate-seconds", type=float, default=3.0)
    parser.add_argument("--generate-jitter", type=float, default=0.0,
                        help="each task's timings scaled by a factor in [1-j, 1+j], e.g. 0.3")
    parser.add_argument("--not-found-window", type=float, default=0.0)
    parser.add_argument("--fault-rate-429", type=float, default=0.0, help="share of answers that are 50429")
    parser.add_argument("--fault-rate-430", type=float, default=0.0, help="share of answers that are 50430")
    parser.add_argument("--fault-rate-500", type=float, default=0.0, help="share of answers that are 50500")
    parser.add_argument("--drop-rate", type=float, default=0.0, help="share of connections closed unanswered")
    parser.add_argument("--drop-after-processing", action="store_true", help="dropped submits still count")
    parser.add_argument("--stuck-rate", type=float, default=0.0, help="share of tasks stuck in_queue")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault and id RNGs")
    parser.add_argument("--public-base-url", default=None, help="base of returned image_urls")
    parser.add_argument("--no-verify", action="store_true", help="accept unsigned requests")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        access_key=args.access_key,
        secret_key=args.secret_key,
        queue_seconds=args.queue_seconds,
        generate_seconds=args.generate_seconds,
        generate_jitter=args.generate_jitter,
        not_found_window=args.not_found_window,
        fault_rate_429=args.fault_rate_429,
        fault_rate_430=args.fault_rate_430,
        fault_rate_500=args.fault_rate_500,
        drop_rate=args.drop_rate,
        drop_after_processing=args.drop_after_processing,
        stuck_rate=args.stuck_rate,
        latency_seconds=args.latency,
        rng_seed=args.seed,
        public_base_url=args.public_base_url,
        check_signature=not args.no_verify,
    )
    return config, args.host, args.port, args.log_level


def main(argv: Sequence[str] | None = None) -> None:
    config, host, port, log_level = parse_args(argv)
    run(config, host, port, log_level)


if __name__ == "__main__":
    main()
