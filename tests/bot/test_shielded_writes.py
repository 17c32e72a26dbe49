"""Storage calls of a job are shielded from its cancellation (bot/jobs/task_store.py): what happens when
such a write fails after the job was stopped."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest

from bot.jobs.task_store import shielded
from storage import IllegalTransition


async def test_a_write_failing_after_its_job_was_stopped_is_logged_not_left_unretrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression: with several processes, a job stopped because another process took its task (the
    runner cancels it) still finished its shielded write, which then failed (the other process had moved
    the task on); nobody retrieved that failure, so asyncio logged "Task exception was never retrieved" at
    ERROR with a traceback, as if the bot had a bug, in every process that lost such a race."""
    loop = asyncio.get_running_loop()
    unretrieved: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))
    caplog.set_level(logging.INFO, logger="bot.jobs.task_store")
    release = asyncio.Event()

    async def transition() -> None:
        await release.wait()
        raise IllegalTransition(7, "submitted", "submitting", "queued")

    job = asyncio.create_task(shielded(transition()))
    await asyncio.sleep(0)
    job.cancel()  # the runner stops the job: the task is leased elsewhere
    with pytest.raises(asyncio.CancelledError):
        await job
    release.set()  # the write goes on to its end, and fails
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()  # asyncio reports an unretrieved exception when the task is collected
    try:
        assert unretrieved == []
        assert "task 7: submitted -> submitting is not allowed (expected queued)" in caplog.text
    finally:
        loop.set_exception_handler(None)
