"""Run every benchmark in turn: `python -m benchmarks [--quick]` (what `make bench` runs)."""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = (
    "benchmarks.bench_client",
    "benchmarks.bench_storage",
    "benchmarks.bench_bot",
    "benchmarks.bench_polling",
    "benchmarks.bench_burst",
    "benchmarks.bench_scale",
)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    failures = 0
    for name in BENCHMARKS:
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        module = importlib.import_module(name)
        code = module.main(args)
        failures += 1 if code else 0
        print(f"--- {name}: {time.perf_counter() - started:.1f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
