"""Counts read right in both languages: "1 credit", "2 credits", "1 个积分"."""

import pytest

from bot.replies.plural import count_text, credits_text, plural_category


@pytest.mark.parametrize(
    ("count", "en"), [(0, "0 credits"), (1, "1 credit"), (2, "2 credits"), (21, "21 credits")]
)
def test_english_has_one_and_other(count: int, en: str) -> None:
    assert credits_text(count, "en") == en
    assert credits_text(count, "zh") == f"{count} 个积分"


def test_categories_and_unknown_languages_fall_back_to_english() -> None:
    assert [plural_category(n, "en") for n in (0, 1, 2)] == ["other", "one", "other"]
    assert plural_category(1, "zh") == "other"
    assert count_text("credits", 1, "fr") == "1 credit"
