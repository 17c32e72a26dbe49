"""From a user's friendly choices to the upstream request, without ever breaking an API rule.

Pure functions, no I/O. `build_params` runs in the handler when the task is created and its result is
persisted with the task, so a task resumed after a restart (or repeated with "Again") sends exactly what
was decided at the time, whatever the user changed in /settings since. `to_submit_request` runs in the
runner once the images are downloaded.

Identity choices and the switches they map to (api.md: `style_switch` needs a style image,
`facestyle_switch` and `style_switch` exclude each other, `hyper_switch` needs every switch off):

| identity     | style image given                      | no style image            |
|--------------|----------------------------------------|---------------------------|
| `face`       | face + style (style learnt from it)    | face                      |
| `face_style` | face + facestyle (style image unused)  | face + facestyle          |
| `style`      | style only (loose likeness)            | facestyle only            |
| `none`       | no switch (prompt-led; style unused)   | no switch                 |

Fast mode (`hyper`) wins over the identity choice: hyper is only allowed with every switch off, so a fast
portrait keeps the likeness only as far as the prompt and the face image alone carry it. It is roughly
twice as fast; the /settings text says "faster, looser likeness". A style image is then not sent at all.

What counts as a valid preset, likeness or watermark corner comes from the table of user settings
(`bot.preferences`): a stored value no choice has (an older version's, a hand-edited one) is read as that
setting's default, exactly as /settings shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from api_client.models import DEFAULT_PROMPT, MAX_PROMPT_CHARS, OUTPUT_SIDE_RANGE, SubmitRequest, Watermark
from bot.preferences import DEFAULT_PRESET, IDENTITIES, PRESET_PROMPTS
from bot.preferences.table import IDENTITY, PRESET, WATERMARK_LANGUAGE, WATERMARK_POSITION
from storage import UserSettings

__all__ = [
    "DEFAULT_PRESET",
    "IDENTITIES",
    "PARAMS_VERSION",
    "PRESET_PROMPTS",
    "PromptTooLong",
    "Switches",
    "build_params",
    "switches_for",
    "to_submit_request",
    "watermark_for",
]

PARAMS_VERSION: Final = 1

#: A fixed watermark opacity: visible, not ugly. Position and language come from the user's settings.
WATERMARK_OPACITY: Final = 0.5


class PromptTooLong(ValueError):
    """The user's text is over the limit; the handler turns it into `error.prompt_too_long`."""

    def __init__(self, length: int, limit: int) -> None:
        self.length = length
        self.limit = limit
        super().__init__(f"prompt has {length} characters, the limit is {limit}")


@dataclass(frozen=True)
class Switches:
    """The four upstream switches plus whether the style image is sent at all."""

    face: bool = False
    facestyle: bool = False
    style: bool = False
    hyper: bool = False
    use_style_image: bool = False


def switches_for(identity: str, *, has_style: bool, hyper: bool) -> Switches:
    """The table in the module docstring; an unknown identity is treated as the default `face`."""
    if hyper:
        return Switches(hyper=True)
    if identity == "none":
        return Switches()
    if identity == "face_style":
        return Switches(face=True, facestyle=True)
    if identity == "style":
        return Switches(style=True, use_style_image=True) if has_style else Switches(facestyle=True)
    return Switches(face=True, style=has_style, use_style_image=has_style)


def prompt_limit(preset_prompt: str, max_prompt_length: int) -> int:
    """The user's share: the configured limit, never more than what fits next to the preset upstream."""
    return max(0, min(max_prompt_length, MAX_PROMPT_CHARS - len(preset_prompt) - 1))


def join_prompt(preset_prompt: str, user_text: str) -> str:
    """Preset first (composition), then the user's words, comma-separated as the API's examples are."""
    text = " ".join(user_text.split())
    if not text:
        return preset_prompt
    return preset_prompt.rstrip().rstrip(",") + "," + text


def _side(value: int) -> int:
    low, high = OUTPUT_SIDE_RANGE
    return min(high, max(low, int(value)))


def build_params(
    settings: UserSettings,
    *,
    has_style: bool,
    prompt_override: str | None,
    max_prompt_length: int,
    seed: int | None = None,
) -> dict[str, object]:
    """The task's params, persisted as JSON. `seed` overrides the user's seed ("New seed" passes -1).

    Raises PromptTooLong when the user's text (the override, else the stored /prompt) is over the limit.
    """
    preset = PRESET.current(settings)
    preset_prompt = PRESET_PROMPTS[preset]
    user_text = (prompt_override if prompt_override is not None else settings.prompt).strip()
    limit = prompt_limit(preset_prompt, max_prompt_length)
    if len(user_text) > limit:
        raise PromptTooLong(len(user_text), limit)
    identity = IDENTITY.current(settings)
    switches = switches_for(identity, has_style=has_style, hyper=settings.hyper)
    chosen_seed = settings.seed if seed is None else seed
    watermark: dict[str, object] | None = None
    if settings.watermark:
        watermark = {
            "position": WATERMARK_POSITION.resolved(settings)["watermark_position"],
            "language": WATERMARK_LANGUAGE.resolved(settings)["watermark_language"],
            "opacity": WATERMARK_OPACITY,
        }
    return {
        "v": PARAMS_VERSION,
        "preset": preset,
        "user_prompt": user_text,
        "prompt": join_prompt(preset_prompt, user_text),
        "identity": identity,
        "width": _side(settings.width),
        "height": _side(settings.height),
        "seed": chosen_seed if isinstance(chosen_seed, int) and chosen_seed >= -1 else -1,
        "face_switch": switches.face,
        "facestyle_switch": switches.facestyle,
        "style_switch": switches.style,
        "hyper_switch": switches.hyper,
        "use_style_image": switches.use_style_image,
        "watermark": watermark,
        # bot.chat.notifier also sends the untouched file as a document when this is set, whatever the size.
        "send_document": settings.full_size_file,
    }


def uses_style_image(params: dict[str, object]) -> bool:
    """Whether the runner must download the task's style image at all."""
    return bool(params.get("use_style_image"))


def to_submit_request(params: dict[str, object], face: bytes, style: bytes | None) -> SubmitRequest:
    """The SubmitRequest for persisted params and the prepared images (face at index 0, style at 1).

    A style image the params do not use is left out, and a missing one turns its switch off, so whatever
    is stored (even params from an older version) yields a request that passes SubmitRequest validation.
    """
    use_style = uses_style_image(params) and style is not None
    hyper = bool(params.get("hyper_switch"))
    facestyle = bool(params.get("facestyle_switch")) and not hyper
    style_switch = bool(params.get("style_switch")) and use_style and not hyper and not facestyle
    face_switch = bool(params.get("face_switch")) and not hyper
    prompt = str(params.get("prompt") or DEFAULT_PROMPT)[:MAX_PROMPT_CHARS]
    seed = params.get("seed")
    return SubmitRequest.from_images(
        face,
        style if use_style else None,
        positive_prompt=prompt,
        hyper_switch=hyper,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= -1 else -1,
        face_switch=face_switch,
        facestyle_switch=facestyle,
        style_switch=style_switch,
        width=_side(_int(params.get("width"), 1000)),
        height=_side(_int(params.get("height"), 1000)),
    )


def watermark_for(params: dict[str, object]) -> Watermark | None:
    """The GetResult watermark for a task, or None when the user turned it off."""
    raw = params.get("watermark")
    if not isinstance(raw, dict):
        return None
    position = _int(raw.get("position"), 0)
    language = _int(raw.get("language"), 1)
    opacity = raw.get("opacity", WATERMARK_OPACITY)
    if not isinstance(opacity, int | float) or not 0 <= opacity <= 1:
        opacity = WATERMARK_OPACITY
    return Watermark(
        add_logo=True,
        position=position if 0 <= position <= 3 else 0,
        language=language if language in (0, 1) else 1,
        opacity=float(opacity),
    )


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
