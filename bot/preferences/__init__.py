"""The user's own settings (what /settings shows), one declarative entry each.

Not to be confused with `bot.config.Settings`, the process configuration read from the environment. The
stored record is `storage.UserSettings`; this package says what a user may choose and what each choice
stores. `option` is the shape of an entry, `table` the entries, `presets` what each style preset means.
"""

from bot.preferences.option import LANGUAGE, Choice, Option, Screen
from bot.preferences.presets import DEFAULT_PRESET, PRESET_PROMPTS
from bot.preferences.table import (
    IDENTITIES,
    MAIN_ROWS,
    OPTIONS,
    OPTIONS_BY_CODE,
    PRESETS,
    RESET,
    SIZES,
    size_name,
)

__all__ = [
    "DEFAULT_PRESET",
    "IDENTITIES",
    "LANGUAGE",
    "MAIN_ROWS",
    "OPTIONS",
    "OPTIONS_BY_CODE",
    "PRESETS",
    "PRESET_PROMPTS",
    "RESET",
    "SIZES",
    "Choice",
    "Option",
    "Screen",
    "size_name",
]
