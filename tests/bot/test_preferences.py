"""The table of user settings agrees with the store and the catalogues, and its entries behave as data."""

from dataclasses import fields, replace

import pytest

from bot.preferences import LANGUAGE, OPTIONS, RESET, Choice, Option, Screen
from bot.preferences.table import IDENTITIES, PRESET, SIZE, WATERMARK_LANGUAGE, WATERMARK_POSITION
from bot.replies import LANGUAGES, catalogue
from storage import UserSettings
from storage.users import IDENTITIES as STORED_IDENTITIES
from storage.users import validate_settings

STORED = {f.name: f.default for f in fields(UserSettings)}


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_every_field_an_option_writes_is_stored_with_the_same_default(option: Option) -> None:
    written = option.fields - {LANGUAGE}
    assert written <= set(STORED), f"{option.name} writes fields UserSettings lacks"
    default = option.changes(option.default)
    default.pop(LANGUAGE, None)
    assert default == {name: STORED[name] for name in default}


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_every_choice_stores_values_the_store_accepts(option: Option) -> None:
    for choice in option.choices:
        changes = option.changes(choice.name)
        changes.pop(LANGUAGE, None)
        validate_settings(changes)  # raises on a mistyped value


def test_the_store_and_the_table_agree_on_the_likeness_choices() -> None:
    assert set(IDENTITIES) == STORED_IDENTITIES


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_every_option_has_its_strings_in_both_languages(option: Option, lang: str) -> None:
    texts = catalogue(lang)
    assert option.label_key in texts and option.toast_key in texts
    if option.screen is Screen.ACTION:
        return
    assert "{value}" in texts[option.label_key]
    labels = [*option.names, *([option.unmatched_label] if option.unmatched_label else [])]
    missing = [option.label_of(name) for name in labels if option.label_of(name) not in texts]
    assert missing == []


def test_reset_restores_every_resettable_default_and_keeps_the_users_content() -> None:
    changed = UserSettings(
        prompt="mine", preset="oil", width=864, height=1152, seed=7, hyper=True, identity="none",
        watermark=True, watermark_language=0, watermark_position=2, full_size_file=True,
        selfie_file_id="face", selfie_unique_id="f", style_file_id="style", style_unique_id="s",
    )  # fmt: skip
    reset = replace(changed, **RESET.changes("all"))
    content = ("prompt", "selfie_file_id", "selfie_unique_id", "style_file_id", "style_unique_id")
    assert reset == replace(UserSettings(), **{name: getattr(changed, name) for name in content})


def test_a_stored_value_no_choice_has_reads_as_the_default() -> None:
    odd = UserSettings(preset="retired-preset", watermark_language=7, watermark_position=9)
    assert PRESET.current(odd) == "anime"
    assert WATERMARK_LANGUAGE.current(odd) == "en"
    assert WATERMARK_POSITION.resolved(odd) == {"watermark_position": 0}
    assert SIZE.value_label(UserSettings(width=1234)) == "size.custom"


def test_a_toggle_steps_to_the_next_choice_and_wraps() -> None:
    assert WATERMARK_LANGUAGE.next(UserSettings(watermark_language=1)) == "zh"
    assert WATERMARK_LANGUAGE.next(UserSettings(watermark_language=0)) == "en"
    assert WATERMARK_POSITION.next(UserSettings(watermark_position=0)) == "top_left"


@pytest.mark.parametrize(
    ("choices", "default", "screen"),
    [
        ((), "a", Screen.TOGGLE),
        ((Choice("a", {}), Choice("a", {})), "a", Screen.TOGGLE),
        ((Choice("a", {}),), "b", Screen.TOGGLE),
        ((Choice("a:b", {}),), "a:b", Screen.TOGGLE),
        ((Choice("a", {}), Choice("b", {})), "a", Screen.ACTION),
    ],
)
def test_a_malformed_entry_is_refused_when_the_table_is_built(
    choices: tuple[Choice, ...], default: str, screen: Screen
) -> None:
    with pytest.raises(ValueError):
        Option("x", "x", choices, default, "settings.row.x", screen=screen)
