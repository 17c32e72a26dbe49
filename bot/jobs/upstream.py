"""What the runner sends to the portrait service and what it accepts back, as plain functions.

Split from the runner (which decides when to call the service): the request built from the user's files,
which polling failures are worth waiting out, and the one image taken from a finished task.

The images come from the prepared-image cache when it has them (`bot.jobs.prepared`: made once when the
photo arrived), else they are downloaded and prepared here, and kept for the next time.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from api_client.errors import ImageRejected, PortraitAPIError, RateLimited, ServerError, TransportError
from api_client.images import MAX_BASE64_BYTES, prepare_image
from api_client.models import SubmitRequest, TaskResult
from bot.jobs.notifier import Notifier
from bot.jobs.params import to_submit_request, uses_style_image
from bot.jobs.prepared import PAIR_BASE64_BYTES, PreparedCache
from storage import Task

__all__ = ["PAIR_BASE64_BYTES", "StoredImageUnusable", "build_request", "first_image", "poll_retryable"]


class StoredImageUnusable(ImageRejected):
    """One of the task's stored images cannot be used (no longer downloadable, or not decodable): which one
    (`selfie` or `style`) matters, because the user must replace that one and the bot drops it."""

    def __init__(self, which: Literal["selfie", "style"], file_id: str, cause: ImageRejected) -> None:
        super().__init__(f"the stored {which} image is unusable: {cause.message}", reason=cause.reason)
        self.which: Literal["selfie", "style"] = which
        self.file_id = file_id


async def build_request(notifier: Notifier, task: Task, cache: PreparedCache | None = None) -> SubmitRequest:
    """The task's images (the style one only when its choice uses it), prepared, and the request."""
    use_style = uses_style_image(task.params) and task.style_file_id is not None
    budget = PAIR_BASE64_BYTES if use_style else MAX_BASE64_BYTES
    face = await _prepared(notifier, cache, "selfie", task.face_file_id, budget)
    style: bytes | None = None
    if use_style and task.style_file_id is not None:
        style = await _prepared(notifier, cache, "style", task.style_file_id, budget)
    return to_submit_request(task.params, face, style)


async def _prepared(
    notifier: Notifier,
    cache: PreparedCache | None,
    which: Literal["selfie", "style"],
    file_id: str,
    budget: int,
) -> bytes:
    if cache is not None:
        kept = await asyncio.to_thread(cache.get, file_id, budget)
        if kept is not None:
            return kept
    try:
        data = (await prepare_image(await notifier.download(file_id), max_base64_bytes=budget)).data
    except ImageRejected as exc:
        raise StoredImageUnusable(which, file_id, exc) from exc
    if cache is not None:
        await asyncio.to_thread(cache.put, file_id, budget, data)
    return data


def poll_retryable(exc: PortraitAPIError) -> bool:
    """A GetResult that failed for now: resending it is safe, so the task waits instead of failing.

    Rate limits, transport errors and HTTP 5xx answers. Not a ServerError carried by a finished task (HTTP
    200, e.g. the emulator's seed 50500): polling again would read the same verdict.
    """
    if isinstance(exc, RateLimited | TransportError):
        return True
    return isinstance(exc, ServerError) and exc.http_status is not None and exc.http_status >= 500


def first_image(result: TaskResult) -> bytes:
    if not result.images:
        raise ServerError("the finished task carried no image bytes")
    return result.images[0]
