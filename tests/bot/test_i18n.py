"""Every language has the same keys and the same placeholders, so no user ever sees a raw key."""

import string

import pytest

from bot.replies import LANGUAGES, catalogue, pick_language, t


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_catalogues_have_the_same_keys() -> None:
    keys = {lang: set(catalogue(lang)) for lang in LANGUAGES}
    assert keys["zh"] ^ keys["en"] == set()


@pytest.mark.parametrize("key", sorted(catalogue("en")))
def test_placeholders_match_across_languages(key: str) -> None:
    assert _placeholders(catalogue("zh")[key]) == _placeholders(catalogue("en")[key])


@pytest.mark.parametrize(
    ("code", "expected"), [("zh-hans", "zh"), ("zh", "zh"), ("en-US", "en"), (None, "en"), ("fr", "en")]
)
def test_pick_language(code: str | None, expected: str) -> None:
    assert pick_language(code) == expected


def test_missing_key_falls_back_to_apology_not_raw_key() -> None:
    assert t("no.such.key", "zh") == catalogue("zh")["error.unexpected"]
