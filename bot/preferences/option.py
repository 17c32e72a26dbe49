"""What one user setting is, as data: its choices, what each choice stores, its default and its strings.

Why data and not code: the /settings keyboard, the callback grammar, applying a tap, Reset and the request
building all need the same facts about a setting. Written once here (an `Option` in `bot.preferences.table`)
they cannot drift apart, and a new setting is one entry plus its catalogue strings.

An option never stores anything itself: a choice says which stored fields it writes (`Choice.stored`), the
settings handler hands those to the store, and the store's typed `UserSettings` record (which cannot import
the bot) keeps the fields and their defaults. A test checks the two agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from bot.replies import DEFAULT_LANGUAGE
from storage import UserSettings

__all__ = ["LANGUAGE", "Choice", "Option", "Screen", "always"]

#: The one field an option may write that is not in UserSettings: the user's language lives in its own
#: column (`users.language`, written by `set_language`) because every reply, not only /settings, reads it.
LANGUAGE = "language"


class Screen(Enum):
    """How an option shows on the main /settings screen."""

    #: The button shows the current value; a tap steps to the next choice (two choices: the other one).
    TOGGLE = "toggle"
    #: The button shows the current value; a tap opens a sub-screen listing every choice, the current ticked.
    MENU = "menu"
    #: A plain button that does one thing (Reset, drop the style image): one choice, no value shown.
    ACTION = "action"


def always(settings: UserSettings) -> bool:
    """The default visibility: the button is on the screen whatever is stored."""
    return True


@dataclass(frozen=True)
class Choice:
    """One value a user can pick: its name (in callback data and catalogue keys) and the fields it stores."""

    name: str
    stored: Mapping[str, object]

    def __post_init__(self) -> None:
        # Frozen all the way: an option's choices are shared by every request.
        object.__setattr__(self, "stored", MappingProxyType(dict(self.stored)))


@dataclass(frozen=True)
class Option:
    """One user setting.

    `code` is the field of its callback data (`set:<code>:<choice>`, and `menu:<code>` for a sub-screen),
    kept short and never renamed: buttons already sent in chats carry it. `label_key` is the catalogue key
    of its button (`{value}` is the current choice's label), `value_key` the template of a choice's label
    (`"size.{}"` -> `size.portrait`). `unmatched_label` names the label shown when the stored fields match no
    choice (a size an admin set); without it the default's label is shown, which is also what the request
    building falls back to. `resettable`: whether Reset restores the default. `shown` hides the button
    when it means nothing (no style image to drop). `toast_key` is the short answer to a tap. `columns`:
    how many choices share a row of its sub-screen (four corners read best as a 2x2 grid).
    """

    name: str
    code: str
    choices: tuple[Choice, ...]
    default: str
    label_key: str
    value_key: str = ""
    screen: Screen = Screen.TOGGLE
    resettable: bool = True
    unmatched_label: str | None = None
    shown: Callable[[UserSettings], bool] = always
    toast_key: str = "settings.saved"
    columns: int = 1
    _by_name: Mapping[str, Choice] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [choice.name for choice in self.choices]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"option {self.name!r} needs distinct choices, got {names}")
        if self.default not in names:
            raise ValueError(f"option {self.name!r}: default {self.default!r} is not a choice")
        if any(":" in part for part in (self.code, *names)):
            raise ValueError(f"option {self.name!r}: ':' would break the callback grammar")
        if self.screen is Screen.ACTION and len(names) != 1:
            raise ValueError(f"action {self.name!r} must have exactly one choice")
        if self.columns < 1:
            raise ValueError(f"option {self.name!r}: a sub-screen row holds at least one choice")
        object.__setattr__(self, "_by_name", MappingProxyType({c.name: c for c in self.choices}))

    @property
    def names(self) -> tuple[str, ...]:
        """The choice names in screen order: the values its callback data may carry."""
        return tuple(choice.name for choice in self.choices)

    @property
    def fields(self) -> frozenset[str]:
        """Every stored field one of its choices writes."""
        return frozenset(name for choice in self.choices for name in choice.stored)

    def choice(self, name: str) -> Choice:
        """The choice called `name`; KeyError for one the option does not have."""
        return self._by_name[name]

    def matching(self, settings: UserSettings, lang: str | None = None) -> Choice | None:
        """The choice whose stored fields all hold what is stored now, if any (`lang` for the language)."""
        for choice in self.choices:
            if all(_read(settings, lang, name) == value for name, value in choice.stored.items()):
                return choice
        return None

    def current(self, settings: UserSettings, lang: str | None = None) -> str:
        """The current choice's name; the default when what is stored matches no choice."""
        found = self.matching(settings, lang)
        return self.default if found is None else found.name

    def resolved(self, settings: UserSettings) -> Mapping[str, object]:
        """The stored fields of the current choice: always values one of the choices would write."""
        return self.choice(self.current(settings)).stored

    def next(self, settings: UserSettings, lang: str | None = None) -> str:
        """What a toggle tap picks: the choice after the current one, wrapping round."""
        names = self.names
        return names[(names.index(self.current(settings, lang)) + 1) % len(names)]

    def label_of(self, name: str) -> str:
        """The catalogue key of a choice's label."""
        return self.value_key.format(name)

    def value_label(self, settings: UserSettings, lang: str | None = None) -> str:
        """The catalogue key of what the main screen shows as the current value."""
        if self.unmatched_label is not None and self.matching(settings, lang) is None:
            return self.label_of(self.unmatched_label)
        return self.label_of(self.current(settings, lang))

    def changes(self, name: str) -> dict[str, object]:
        """The stored fields to write for the choice `name` (the language included, see LANGUAGE)."""
        return dict(self.choice(name).stored)


def _read(settings: UserSettings, lang: str | None, name: str) -> object:
    if name == LANGUAGE:
        return lang or DEFAULT_LANGUAGE
    return getattr(settings, name)
