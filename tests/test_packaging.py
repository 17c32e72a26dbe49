"""The image and the compose file: dependencies cached apart from the source, a stop grace longer than the
bot's own, an example environment the bot understands, and (where a Docker engine runs) a real build whose
health check passes."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from bot.jobs.runner import STOP_GRACE_SECONDS
from bot.ops.http import GRACEFUL_SECONDS

ROOT = Path(__file__).resolve().parent.parent


def test_the_image_installs_dependencies_before_copying_the_source() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]

    def first(prefix: str) -> int:
        return next(n for n, line in enumerate(lines) if line.startswith(prefix))

    deps = first("RUN pip install --no-cache-dir --prefix=/install --require-hashes -r requirements/")
    package = first("RUN pip install --no-cache-dir --prefix=/install --no-deps .")
    assert first("COPY requirements/runtime.lock") < deps < first("COPY bot") < package


def test_compose_gives_every_bot_process_more_time_to_stop_than_the_bot_takes() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    (grace,) = {int(s) for s in re.findall(r"stop_grace_period: (\d+)s", compose)}
    assert grace > STOP_GRACE_SECONDS + GRACEFUL_SECONDS + 10
    for role in ('["run", "--webhook", "--no-jobs"]', '["worker"]'):
        assert role in compose
    workers = re.findall(r"WORKER_ID: (\S+)", compose)
    assert len(workers) == len(set(workers)) == 3  # one lease owner per process


def test_the_example_environment_names_only_settings_the_bot_reads() -> None:
    config = (ROOT / "bot" / "config.py").read_text()
    names = [line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
             if line and not line.startswith("#")]  # fmt: skip
    assert {"WEBHOOK_URL", "WEBHOOK_SECRET", "TELEGRAM_BOT_TOKEN"} <= set(names)
    assert [name for name in names if f'"{name}"' not in config] == []


def _docker_engine() -> str | None:
    """Why the image cannot be built here, or None when a Docker engine answers."""
    if shutil.which("docker") is None:
        return "no docker client on this machine"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        return "no Docker engine answers (`docker info` failed): the image build is not tested here"
    return None


@pytest.mark.slow
def test_the_image_builds_and_its_health_check_passes(tmp_path: Path) -> None:
    reason = _docker_engine()
    if reason:
        pytest.skip(reason)
    tag = f"portrait-bot-test:{uuid.uuid4().hex[:8]}"
    volume = f"portrait-bot-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=1800)
    try:
        create = "import asyncio; from storage import Store\n" \
                 "async def main():\n    await (await Store.open('/data/portrait-bot.db')).close()\n" \
                 "asyncio.run(main())"  # fmt: skip
        subprocess.run(["docker", "run", "--rm", "-v", f"{volume}:/data", "--entrypoint", "python", tag,
                        "-c", create], check=True, timeout=300)  # fmt: skip
        health = subprocess.run(["docker", "run", "--rm", "-v", f"{volume}:/data", tag, "admin", "health"],
                                capture_output=True, text=True, timeout=300)  # fmt: skip
        assert health.returncode == 0, health.stdout + health.stderr
    finally:
        subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True, timeout=120)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)
