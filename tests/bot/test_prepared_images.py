"""The prepared-image cache: made once at upload, read by the runner instead of downloading again."""

from __future__ import annotations

from pathlib import Path

from api_client.images import MAX_BASE64_BYTES, prepare
from bot.jobs.prepared import PAIR_BASE64_BYTES, PreparedCache
from storage import TaskState

from .runner_support import FILES, bench, jpeg


def test_an_upload_is_kept_for_both_budgets_when_its_bytes_fit_both(tmp_path: Path) -> None:
    cache = PreparedCache(tmp_path / "prepared")
    raw = jpeg((900, 700))
    assert cache.keep_upload(raw, "file-1", "unique-1") == (900, 700)
    expected = prepare(raw).data
    assert cache.get("file-1", MAX_BASE64_BYTES) == expected
    assert cache.get("file-1", PAIR_BASE64_BYTES) == prepare(raw, max_base64_bytes=PAIR_BASE64_BYTES).data
    assert cache.get("another-file-id", MAX_BASE64_BYTES) is None
    # The same file under a new file id (Telegram may hand out another one) finds the same entry.
    cache.keep_upload(raw, "file-1b", "unique-1")
    assert cache.get("file-1b", MAX_BASE64_BYTES) == expected


def test_the_cache_stays_within_its_size_dropping_the_least_recently_used(tmp_path: Path) -> None:
    cache = PreparedCache(tmp_path / "prepared", max_bytes=2_500)
    for n in range(3):
        cache.put(f"f{n}", MAX_BASE64_BYTES, bytes([n]) * 1_000)
        if n == 1:
            assert cache.get("f0", MAX_BASE64_BYTES) is not None  # f0 used again: f1 is now the oldest
    assert cache.size <= 2_500
    assert cache.get("f1", MAX_BASE64_BYTES) is None
    assert cache.get("f2", MAX_BASE64_BYTES) == bytes([2]) * 1_000
    # A new process reads the index from disk; deleting the directory only costs downloads.
    again = PreparedCache(tmp_path / "prepared", max_bytes=2_500)
    assert again.get("f2", MAX_BASE64_BYTES) is not None
    assert again.forget(["f2", "never-seen"]) == 2  # its alias and its one image
    assert again.get("f2", MAX_BASE64_BYTES) is None


async def test_the_runner_uses_the_prepared_selfie_and_again_needs_no_download(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        cache = PreparedCache(tmp_path / "prepared")
        cache.keep_upload(FILES["face"], "face", "face-unique")
        runner, notifier = b.runner(prepared=cache)
        first = await b.task()
        runner.enqueue(first.id)
        await runner.run_until_idle()
        again = await b.task()  # "Again": the same selfie
        runner.enqueue(again.id)
        await runner.run_until_idle()
        assert [(await b.state(t.id)).state for t in (first, again)] == [TaskState.DONE] * 2
        assert notifier.downloads == []  # neither generation fetched the photo from Telegram
        assert cache.hits == 2


async def test_a_miss_downloads_prepares_and_keeps_it(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        cache = PreparedCache(tmp_path / "prepared")
        runner, notifier = b.runner(prepared=cache)
        for _ in range(2):
            task = await b.task()
            runner.enqueue(task.id)
            await runner.run_until_idle()
            assert (await b.state(task.id)).state is TaskState.DONE
        assert notifier.downloads == ["face"]  # the second generation found it kept
