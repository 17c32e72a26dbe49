"""The texts that ask a user to change their words name every place the words can come from.

The words reach a task from `/anime <text>` (a message or a photo caption) or from the saved `/prompt`;
the refusal cannot tell which (the task keeps only the text), so it must point at both, in every language.
"""

import pytest

from api_client.errors import RiskRejected, RiskStage
from bot.jobs.params import PromptTooLong
from bot.replies import LANGUAGES, t
from bot.replies.errors import friendly

REFUSALS = [
    RiskRejected("refused", stage=RiskStage.INPUT_TEXT, code=50412),
    RiskRejected("refused", stage=RiskStage.BLOCKLIST, code=50413),
    PromptTooLong(400, 300),
]


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("exc", REFUSALS, ids=lambda e: type(e).__name__ + str(getattr(e, "code", "")))
def test_a_refused_text_points_at_anime_and_at_prompt(exc: Exception, lang: str) -> None:
    error = friendly(exc)
    text = t(error.key, lang, **error.values)
    assert "/anime" in text and "/prompt" in text
    assert "{" not in text  # every placeholder filled
