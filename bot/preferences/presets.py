"""The style presets: what each one adds to the prompt.

A preset is a user setting (an entry in `bot.preferences.table`, built from this mapping) whose meaning is
a prompt, so the two live side by side: a new preset is one line here plus its `preset.<name>` label.
"""

from __future__ import annotations

from typing import Final

from api_client.models import DEFAULT_PROMPT

__all__ = ["DEFAULT_PRESET", "PRESET_PROMPTS"]

DEFAULT_PRESET: Final = "anime"

#: Preset -> the composition/style prompt the user's text is joined to, in screen order. Plain descriptive
#: words only: studio, artist and franchise names would trip the upstream blocklist (50413).
PRESET_PROMPTS: Final[dict[str, str]] = {
    "anime": DEFAULT_PROMPT,
    "watercolor": "watercolor painting,soft washes,paper texture,pastel colors,portrait,looking at viewer,",
    "cyberpunk": "cyberpunk,neon lights,night city,futuristic,glowing accents,portrait,looking at viewer,",
    "chibi": "chibi,cute,big eyes,small body,simple background,portrait,",
    "oil": "oil painting,visible brush strokes,rich colors,classical lighting,portrait,",
    "film": "hand-drawn animated film still,warm colors,soft light,detailed background,portrait,",
}
