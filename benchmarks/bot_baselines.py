"""What the bot benchmark compares the bot with: raw client round trips and raw sendPhoto uploads, each
from a process of its own against the same two servers (`benchmarks.baseline_worker`), and image
preparation (in the driver).

Kept apart from `bench_bot` (which runs the bot) so each baseline's driving reads on its own.
"""

from __future__ import annotations

import time
from pathlib import Path

from api_client.images import check_image, prepare_image
from benchmarks.bot_report import Baseline, ImageCost
from benchmarks.procs import Servers, run_json


def run_baseline(
    label: str, servers: Servers, telegram_url: str, chats: list[int], face: Path, result: Path,
    concurrency: int,
) -> Baseline:  # fmt: skip
    tasks = len(chats)
    client = run_json("benchmarks.baseline_worker", [
        "client", "--base-url", servers.emulator, "--face", str(face), "--tasks", str(tasks),
        "--concurrency", str(concurrency), "--result-out", str(result),
    ])  # fmt: skip
    upload = run_json("benchmarks.baseline_worker", [
        "send-photo", "--telegram-url", telegram_url, "--chats", ",".join(map(str, chats)),
        "--image", str(result), "--concurrency", str(concurrency),
    ])  # fmt: skip
    cpu = float(client["cpu"]) / tasks + float(upload["cpu"]) / tasks
    failures = int(client["failures"]) + int(upload["failures"])
    return Baseline(label, client["submit"], client["round_trip"], upload["send_photo"], cpu, failures)


async def image_cost(selfie: bytes, calls: int) -> ImageCost:
    """CPU per call of the bot's two decodes of a selfie, in this process (all threads: prepare_image runs
    in one), so the bot's figure can be read with and without them."""
    check_image(selfie)
    started = time.process_time()
    for _ in range(calls):
        check_image(selfie)
    check = (time.process_time() - started) / calls

    await prepare_image(selfie)
    started = time.process_time()
    for _ in range(calls):
        await prepare_image(selfie)
    return ImageCost(check, (time.process_time() - started) / calls)
