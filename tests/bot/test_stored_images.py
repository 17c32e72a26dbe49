"""A stored picture that fails at generation time: the reply names it, the bot drops it, the unit comes back;
and picture refusals of tasks that sent a style image say it may be the cause (reliability items 8, 9)."""

from __future__ import annotations

from pathlib import Path

from bot.replies.errors import STYLE_HINT
from storage import TaskState
from tests.bot.runner_support import bench


async def _store_images(b, user_id: int, *, selfie: str, style: str | None) -> None:  # type: ignore[no-untyped-def]
    await b.store.users.upsert_seen(user_id, username=None, first_name="U", language_code="en")
    await b.store.users.update_settings(user_id, selfie_file_id=selfie, style_file_id=style)


async def test_an_unreadable_style_image_is_named_dropped_and_refunded(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        await _store_images(b, 1, selfie="face", style="junk")
        task = await b.task(face="face", style="junk")
        runner, notifier = b.runner()
        runner.enqueue(task.id)
        await runner.run_until_idle()

        failed = await b.state(task.id)
        assert (failed.state, failed.error_code) == (TaskState.FAILED, "image:style:not_image")
        assert notifier.keys() == ["error.image.stored_style"]
        settings = await b.store.users.get_settings(1)
        assert (settings.selfie_file_id, settings.style_file_id) == ("face", None)
        assert b.app_state.submits_received == 0
        assert await b.free_left() == 3 and await b.ledger_ok()

        # The next portrait works without the dropped picture.
        b.clock.advance(1)
        again = await b.task(face="face", style=None)
        runner.enqueue(again.id)
        await runner.run_until_idle()
        assert (await b.state(again.id)).state is TaskState.DONE


async def test_an_unreadable_selfie_is_named_and_a_newer_one_is_kept(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        await _store_images(b, 1, selfie="tiny", style=None)
        task = await b.task(face="tiny")
        await b.store.users.update_settings(1, selfie_file_id="face")  # a new selfie arrived meanwhile
        runner, notifier = b.runner()
        runner.enqueue(task.id)
        await runner.run_until_idle()
        assert (await b.state(task.id)).error_code == "image:selfie:too_small"
        assert notifier.keys() == ["error.image.stored_selfie"]
        assert (await b.store.users.get_settings(1)).selfie_file_id == "face"  # not the one thrown away


async def test_a_refused_input_picture_points_at_the_style_image_when_one_was_sent(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        with_style = await b.task(1, face="magenta", style="style")
        without = await b.task(2, face="magenta")
        runner, notifier = b.runner()
        for task in (with_style, without):
            runner.enqueue(task.id)
        await runner.run_until_idle()
        hints = {task_id: error.hint for task_id, error, _ in notifier.failures}
        assert notifier.keys() == ["error.risk.input_image", "error.risk.input_image"]
        assert hints == {with_style.id: STYLE_HINT, without.id: None}
