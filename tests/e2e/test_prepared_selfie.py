"""The selfie is prepared once when it arrives: generations (and "Again") never fetch it from Telegram."""

from __future__ import annotations

from tests.e2e.conftest import Harness, Person, is_photo, says
from tests.e2e.images import draw_selfie
from tests.e2e.test_forgetme import buttons


async def test_generations_reuse_the_selfie_prepared_at_upload(harness: Harness, alice: Person) -> None:
    await alice.photo(draw_selfie(), expect=says("face.saved"))
    assert len(harness.fake.calls_to("getFile")) == 1  # the upload check
    first = await alice.say("/anime", is_photo)
    task = (await harness.services.store.tasks.recent_for_user(alice.user.id, limit=1))[0]
    await alice.click(first, f"again:{task.id}")
    await alice.fake.wait_for(lambda: len([m for m in alice.sent() if m.photo]) == 2 or None, 10)
    await harness.settle()
    assert len(harness.fake.calls_to("getFile")) == 1  # neither generation downloaded it again
    cache = harness.services.prepared
    assert cache is not None and cache.hits == 2 and cache.size > 0

    # /forgetme deletes the prepared copy with the rest of their images.
    question = await alice.say("/forgetme", says("forget.confirm"))
    await alice.tap(question, buttons(question)[alice.text("forget.button.yes")] or "")
    assert cache.size == 0
