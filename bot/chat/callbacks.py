"""Compact inline-button data (at most 64 bytes) with exactly one parser, plus the keyboards that use it.

Why strings and not PTB's arbitrary callback data: that keeps Python objects in memory (or a pickle), so
a restart turns every button into garbage. `set:size:portrait` or `again:42` survives a restart, fits the
64-byte limit by construction, and a button we no longer understand parses to `None`, which the bot
answers politely (`stale_answer`) instead of failing.

Grammar (one parser, `parse`):
    set:<field>:<value>     change one setting      (`set:size:portrait`, `set:hyper:on`, `set:reset:all`)
    menu:<name>             open a settings screen  (`menu:size`, `menu:main`, `menu:close`)
    again:<task_id>         repeat a finished task with the same seed
    seed:<task_id>          repeat it with a new random seed
    resend:<task_id>        send again a portrait whose delivery Telegram never confirmed
    forget:<yes|no>:<user>  answer /forgetme's question (only that user's tap counts)

The settings part is not written here: fields, values, sub-screens and the rows of the main screen all come
from the table of user settings (`bot.preferences.table`), so this module only draws what it describes.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.preferences import MAIN_ROWS, OPTIONS, OPTIONS_BY_CODE, Option, Screen
from bot.replies import t
from storage import UserSettings

MAX_CALLBACK_BYTES = 64

#: field -> allowed values; the parser refuses anything else, so a forged or stale button changes nothing.
SETTING_CHOICES: dict[str, tuple[str, ...]] = {option.code: option.names for option in OPTIONS}
#: The screens `menu:<name>` opens: the main one, every option's sub-screen, and "close" (no keyboard).
MENUS: tuple[str, ...] = (
    "main",
    *(option.code for option in OPTIONS if option.screen is Screen.MENU),
    "close",
)


@dataclass(frozen=True)
class SetOption:
    """`set:<field>:<value>`: change one user setting."""

    field: str
    value: str

    def encode(self) -> str:
        return _checked(f"set:{self.field}:{self.value}")


@dataclass(frozen=True)
class OpenMenu:
    """`menu:<name>`: show one settings screen in place (or close the keyboard)."""

    name: str

    def encode(self) -> str:
        return _checked(f"menu:{self.name}")


@dataclass(frozen=True)
class Repeat:
    """`again:<id>` / `seed:<id>`: a new task from a finished one, same seed or a fresh one."""

    task_id: int
    new_seed: bool

    def encode(self) -> str:
        return _checked(f"{'seed' if self.new_seed else 'again'}:{self.task_id}")


@dataclass(frozen=True)
class Forget:
    """`forget:yes:<user_id>` / `forget:no:<user_id>`: confirm or decline /forgetme."""

    user_id: int
    confirm: bool

    def encode(self) -> str:
        return _checked(f"forget:{'yes' if self.confirm else 'no'}:{self.user_id}")


@dataclass(frozen=True)
class SendAgain:
    """`resend:<id>`: fetch a finished task's result again and send it (its delivery was unconfirmed)."""

    task_id: int

    def encode(self) -> str:
        return _checked(f"resend:{self.task_id}")


Callback = SetOption | OpenMenu | Repeat | Forget | SendAgain


def _checked(data: str) -> str:
    if not 1 <= len(data.encode()) <= MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data must be 1..{MAX_CALLBACK_BYTES} bytes: {data!r}")
    return data


def parse(data: str | object | None) -> Callback | None:
    """The one parser: a known, well-formed button or None (stale, forged or from an older version)."""
    if not isinstance(data, str) or len(data.encode()) > MAX_CALLBACK_BYTES:
        return None
    kind, _, rest = data.partition(":")
    if kind == "set":
        name, _, value = rest.partition(":")
        return SetOption(name, value) if value in SETTING_CHOICES.get(name, ()) else None
    if kind == "menu":
        return OpenMenu(rest) if rest in MENUS else None
    if kind in ("again", "seed") and rest.isdigit() and len(rest) <= 18:
        return Repeat(int(rest), new_seed=kind == "seed")
    if kind == "resend" and rest.isdigit() and len(rest) <= 18:
        return SendAgain(int(rest))
    answer, _, user = rest.partition(":")
    if kind == "forget" and answer in ("yes", "no") and user.isdigit() and len(user) <= 18:
        return Forget(int(user), confirm=answer == "yes")
    return None


def stale_answer(lang: str) -> str:
    """What a button we no longer understand says (shown as a callback toast)."""
    return t("callback.stale", lang)


def result_keyboard(task_id: int, lang: str) -> InlineKeyboardMarkup:
    """The "Again" / "New seed" row under a delivered portrait (imported by bot.chat.notifier)."""
    again = _button(t("button.again", lang), Repeat(task_id, new_seed=False))
    reseed = _button(t("button.new_seed", lang), Repeat(task_id, new_seed=True))
    return InlineKeyboardMarkup([[again, reseed]])


def resend_keyboard(task_id: int, lang: str) -> InlineKeyboardMarkup:
    """The "Send it again" button under the note about an unconfirmed delivery."""
    return InlineKeyboardMarkup([[_button(t("button.send_again", lang), SendAgain(task_id))]])


def _button(text: str, callback: Callback) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=callback.encode())


def _main_button(option: Option, s: UserSettings, lang: str) -> InlineKeyboardButton:
    """An option on the main screen: an action names itself; a setting shows its current value."""
    if option.screen is Screen.ACTION:
        return _button(t(option.label_key, lang), SetOption(option.code, option.default))
    text = t(option.label_key, lang, value=t(option.value_label(s, lang), lang))
    if option.screen is Screen.MENU:
        return _button(text, OpenMenu(option.code))
    return _button(text, SetOption(option.code, option.next(s, lang)))


def settings_keyboard(s: UserSettings, lang: str) -> InlineKeyboardMarkup:
    """The main /settings screen: one row per setting showing its current value; tapping opens or toggles."""
    rows = [[_main_button(option, s, lang) for option in row if option.shown(s)] for row in MAIN_ROWS]
    rows = [row for row in rows if row]
    rows[-1].append(_button(t("button.done", lang), OpenMenu("close")))
    return InlineKeyboardMarkup(rows)


def choice_keyboard(menu: str, s: UserSettings, lang: str) -> InlineKeyboardMarkup:
    """A sub-screen listing the choices for one setting, the current one ticked, with a Back button."""
    option = OPTIONS_BY_CODE.get(menu)
    if option is None or option.screen is not Screen.MENU:
        return settings_keyboard(s, lang)
    ticked = option.matching(s, lang)
    buttons = [
        _button(
            ("✓ " if choice is ticked else "") + t(option.label_of(choice.name), lang),
            SetOption(option.code, choice.name),
        )
        for choice in option.choices
    ]
    rows = [buttons[i : i + option.columns] for i in range(0, len(buttons), option.columns)]
    rows.append([_button(t("button.back", lang), OpenMenu("main"))])
    return InlineKeyboardMarkup(rows)
