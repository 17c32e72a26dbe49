"""Photos the way Telegram stores them: a ladder of sizes, smallest first, largest capped at 2560 px.

Only the dimensions are computed up front (Pillow reads the header); the downscaled bytes are rendered on
first download, so a test that never fetches a thumbnail pays nothing for it.
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

PHOTO_SIDES = (90, 320, 800, 1280, 2560)
MAX_PHOTO_UPLOAD = 10 * 1024 * 1024
MAX_DOCUMENT_UPLOAD = 50 * 1024 * 1024
MAX_DOWNLOAD = 20 * 1024 * 1024


MAX_PROBE_BYTES = 20 * 1024 * 1024


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of an image, or None when Pillow cannot read it (or will not: a bomb, or a file
    past Telegram's 20 MB download limit, which the fake would only waste seconds probing)."""
    if len(data) > MAX_PROBE_BYTES:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def photo_ladder(width: int, height: int) -> list[tuple[int | None, int, int]]:
    """(max_side or None for the original, width, height) per PhotoSize, smallest first."""
    longest = max(width, height)
    ladder: list[tuple[int | None, int, int]] = [
        (side, *fit(width, height, side)) for side in PHOTO_SIDES if side < longest
    ]
    if longest <= PHOTO_SIDES[-1]:
        ladder.append((None, width, height))  # small enough: the original is the largest size
    return ladder[-4:]


def render(data: bytes, max_side: int) -> bytes:
    """A JPEG no larger than max_side, as Telegram recompresses photos; call through asyncio.to_thread."""
    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((max_side, max_side))
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=85)
        return out.getvalue()
