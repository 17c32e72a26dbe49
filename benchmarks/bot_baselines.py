"""What the bot benchmark compares the bot with, each measured from a process of its own against the same
two servers: raw client round trips and raw sendPhoto uploads (`benchmarks.baseline_worker`), the floor
of a generation's whole I/O (`benchmarks.floor_worker`), and image preparation (in the driver).

Kept apart from `bench_bot` (which runs the bot) so each baseline's driving reads on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from api_client.images import check_image, prepare_image
from benchmarks.bot_report import Baseline, ImageCost, Window
from benchmarks.floor_worker import Floor
from benchmarks.procs import ROOT, START_TIMEOUT, TIMEOUT, Servers, child_env, run_json

FLOOR_WARMUP = 2  # generations the floor worker does before its clock starts


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


# --- the floor ---------------------------------------------------------------------------------------------


@dataclass
class FloorRun:
    """The floor worker's figures (None if it failed), the batches it served, what went wrong."""

    floor: Floor | None = None
    batches: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def sql_spec(window: Window, generations: int) -> str:
    """A window's commits, fsynced commits and thread hops per generation, as the floor worker takes them."""
    counts = (window.commits, window.fsynced, window.hops)
    return ",".join(str(max(0, round(count / max(1, generations)))) for count in counts)


async def run_floor(
    servers: Servers, telegram_url: str, face: Path, workdir: Path, generations: int, *, selfie_sql: str,
    anime_sql: str,
) -> FloorRun:  # fmt: skip
    """The floor worker polling the fake while one scripted user at a time sends a selfie, then `/anime`
    (as the bot's single-user scenario): `FLOOR_WARMUP` generations, then `generations` measured ones."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    run, log = FloorRun(), workdir / "floor.log"
    with log.open("wb") as errors:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.floor_worker", "--telegram-url", telegram_url,
            "--base-url", servers.emulator, "--face", str(face), "--db", str(workdir / "floor.db"),
            "--generations", str(generations), "--warmup", str(FLOOR_WARMUP),
            "--selfie-sql", selfie_sql, "--anime-sql", anime_sql,
            cwd=ROOT, env=child_env(), stdout=asyncio.subprocess.PIPE, stderr=errors,
        )  # fmt: skip
    assert worker.stdout is not None
    output = b""
    try:
        ready = await asyncio.wait_for(worker.stdout.readline(), START_TIMEOUT)
        if ready.strip() != b"ready":
            raise RuntimeError("the floor worker did not start polling")
        for _ in range(FLOOR_WARMUP + generations):
            batch, _ = await servers.new_batch(1)
            run.batches.append(batch)
            await servers.selfies(batch)
            late = [await servers.wait(batch, "acknowledged")]
            if late[0] is None:
                await servers.command(batch, "/anime")
                late.append(await servers.wait(batch, "photos"))
            run.problems += [f"floor: {problem}" for problem in late if problem]
            if run.problems:
                break
        if not run.problems:
            output = await asyncio.wait_for(worker.stdout.read(), TIMEOUT)
    except (RuntimeError, TimeoutError) as exc:
        run.problems.append(f"floor: {exc}")
    finally:
        if not output:  # it failed, or this did: it would wait for generations that never come
            with contextlib.suppress(ProcessLookupError):
                worker.kill()
        code = await worker.wait()
    if code != 0 or not output.strip():
        tail = log.read_text(errors="replace")[-2000:]
        run.problems.append(f"floor: the worker exited with {code}:\n{tail}")
        return run
    run.floor = floor = Floor(**json.loads(output.strip().splitlines()[-1]))
    floor.update_to_submit = await update_to_submit(servers, run.batches[FLOOR_WARMUP:], floor.tasks)
    return run


async def update_to_submit(servers: Servers, batches: list[int], tasks: list[str]) -> list[float]:
    """Per generation (one user a batch, in order), as the bot's row is measured: the fake hands `/anime`
    out -> the emulator has the SubmitTask request."""
    submitted, _ = await servers.marks()
    seconds = []
    for batch, task in zip(batches, tasks, strict=True):
        for user in await servers.report(batch):
            if user["command_handed_out_at"] is not None and task in submitted:
                seconds.append(submitted[task] - user["command_handed_out_at"])
    return seconds
