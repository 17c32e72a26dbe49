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
    forget:<yes|no>:<user>  answer /forgetme's question (only that user's tap counts)
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.jobs.params import IDENTITIES, PRESET_PROMPTS
from bot.replies import LANGUAGES, t
from storage import UserSettings

MAX_CALLBACK_BYTES = 64

# Friendly names -> values the store keeps. Order is the order on screen.
PRESETS: tuple[str, ...] = tuple(PRESET_PROMPTS)
SIZES: dict[str, tuple[int, int]] = {
    "square": (1000, 1000),
    "portrait": (864, 1152),
    "landscape": (1152, 864),
}
ON_OFF = ("on", "off")
#: The full-size file: "always" also sends every result as a document, "auto" only when the photo is shrunk.
FULL_SIZE = ("always", "auto")

# field -> allowed values; the parser refuses anything else, so a forged or stale button changes nothing.
SETTING_CHOICES: dict[str, tuple[str, ...]] = {
    "preset": PRESETS,
    "size": tuple(SIZES),
    "id": IDENTITIES,
    "hyper": ON_OFF,
    "wm": ON_OFF,
    "wml": LANGUAGES,
    "full": FULL_SIZE,
    "lang": LANGUAGES,
    "reset": ("all",),
}
MENUS: tuple[str, ...] = ("main", "preset", "size", "id", "close")


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


Callback = SetOption | OpenMenu | Repeat | Forget


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


def size_name(width: int, height: int) -> str:
    """Friendly name of a stored size; sizes set elsewhere (admin, older versions) show as "custom"."""
    for name, dims in SIZES.items():
        if dims == (width, height):
            return name
    return "custom"


def watermark_lang(code: int) -> str:
    """Upstream logo language: 0 Chinese ("AI生成"), 1 English ("Generated by AI")."""
    return "zh" if code == 0 else "en"


def _button(text: str, callback: Callback) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=callback.encode())


def _on_off(value: bool, lang: str) -> str:
    return t("settings.on" if value else "settings.off", lang)


def settings_keyboard(s: UserSettings, lang: str) -> InlineKeyboardMarkup:
    """The main /settings screen: one row per setting showing its current value; tapping opens or toggles."""

    def row(key: str, value: str, callback: Callback) -> InlineKeyboardButton:
        return _button(t(f"settings.row.{key}", lang, value=value), callback)

    wm_lang = watermark_lang(s.watermark_language)
    full = "always" if s.full_size_file else "auto"
    rows = [
        [row("preset", t(f"preset.{s.preset}", lang), OpenMenu("preset"))],
        [row("size", t(f"size.{size_name(s.width, s.height)}", lang), OpenMenu("size"))],
        [row("identity", t(f"identity.{s.identity}", lang), OpenMenu("id"))],
        [row("hyper", _on_off(s.hyper, lang), SetOption("hyper", "off" if s.hyper else "on"))],
        [
            row("watermark", _on_off(s.watermark, lang), SetOption("wm", "off" if s.watermark else "on")),
            row("watermark_language", t(f"language.{wm_lang}", lang), SetOption("wml", _other(wm_lang))),
        ],
        [row("full_size", t(f"settings.full_size.{full}", lang), SetOption("full", _other_full(full)))],
        [row("language", t(f"language.{lang}", lang), SetOption("lang", _other(lang)))],
        [
            _button(t("button.reset", lang), SetOption("reset", "all")),
            _button(t("button.done", lang), OpenMenu("close")),
        ],
    ]
    return InlineKeyboardMarkup(rows)


def _other(lang: str) -> str:
    return "zh" if lang == "en" else "en"


def _other_full(current: str) -> str:
    return "auto" if current == "always" else "always"


def choice_keyboard(menu: str, s: UserSettings, lang: str) -> InlineKeyboardMarkup:
    """A sub-screen listing the choices for one setting, the current one ticked, with a Back button."""
    if menu == "preset":
        current, field, options, prefix = s.preset, "preset", PRESETS, "preset"
    elif menu == "size":
        current, field, options, prefix = size_name(s.width, s.height), "size", tuple(SIZES), "size"
    elif menu == "id":
        current, field, options, prefix = s.identity, "id", IDENTITIES, "identity"
    else:
        return settings_keyboard(s, lang)
    rows = [
        [_button(("✓ " if o == current else "") + t(f"{prefix}.{o}", lang), SetOption(field, o))]
        for o in options
    ]
    rows.append([_button(t("button.back", lang), OpenMenu("main"))])
    return InlineKeyboardMarkup(rows)
