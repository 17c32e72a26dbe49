"""Turn whatever a user uploads into an image the service accepts.

The service takes JPEG/PNG/BMP, 128..4096 px a side, at most 4.7 MB of base64 each. Users send phone photos
(HEIC, EXIF-rotated, 12-50 MP), screenshots with alpha, WebP stickers, and sometimes junk. `prepare_image`
normalises all of that to one RGB JPEG that fits, and refuses what it cannot use with `ImageRejected(reason)`
*before* a billed request is made. Decoding is CPU work, so it runs in a worker thread.

Decompression bombs: the pixel count is read from the file header (Pillow's `Image.open` is lazy) and checked
against `MAX_PIXELS` before anything is decoded; Pillow's own `DecompressionBombError` maps to "bomb" too.
"""

from __future__ import annotations

import asyncio
import io
import math
from dataclasses import dataclass
from typing import Final

import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from api_client.errors import ImageRejected

__all__ = [
    "MAX_BASE64_BYTES",
    "MAX_INPUT_BYTES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MIN_SIDE",
    "PreparedImage",
    "base64_length",
    "check_image",
    "prepare",
    "prepare_image",
    "read_header_size",
    "sniff_format",
]

pillow_heif.register_heif_opener()

#: api.md: 128..4096 px a side.
MIN_SIDE: Final = 128
MAX_SIDE: Final = 4096
#: api.md says "4.7 MB" of base64 per image. We read MB as 10**6 bytes, the smaller reading, so we can only
#: err on the safe side of the service's limit.
MAX_BASE64_BYTES: Final = 4_700_000
#: Refuse to decode anything above 50 megapixels (a 200 MB RGB bitmap); real phone photos are 12-50 MP.
MAX_PIXELS: Final = 50_000_000
#: Refuse raw uploads above 50 MB without looking further (Telegram's bot download limit is 20 MB).
MAX_INPUT_BYTES: Final = 50 * 1024 * 1024

_PIL_FORMATS: Final[dict[str, tuple[str, ...]]] = {
    "jpeg": ("JPEG",),  # MPO (multi-picture) files open through the JPEG plugin
    "png": ("PNG",),
    "bmp": ("BMP",),
    "webp": ("WEBP",),
    "heif": ("HEIF",),
}
_HEIF_BRANDS: Final = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
_BMP_DIB_SIZES: Final = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_JPEG_QUALITIES: Final = (92, 85, 75, 65, 55)
_WHITE: Final = (255, 255, 255)


@dataclass(frozen=True)
class PreparedImage:
    """An RGB JPEG that satisfies every upstream image rule."""

    data: bytes
    width: int
    height: int


def sniff_format(raw: bytes) -> str | None:
    """Name the container from its magic bytes, so the file name or MIME type a user claims never matters."""
    if raw.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if raw.startswith(b"BM") and len(raw) >= 18 and int.from_bytes(raw[14:18], "little") in _BMP_DIB_SIZES:
        return "bmp"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "webp"
    if raw[4:8] == b"ftyp" and raw[8:12] in _HEIF_BRANDS:
        return "heif"
    return None


def base64_length(n: int) -> int:
    """Length of the padded base64 text of `n` bytes (what the service's size limits count)."""
    return 4 * math.ceil(n / 3)


def read_header_size(raw: bytes) -> tuple[int, int]:
    """(width, height) from the header alone, without decoding pixels.

    Raises ImageRejected("bomb") for anything above MAX_PIXELS and ImageRejected("not_image") if Pillow cannot
    identify it.
    """
    fmt = sniff_format(raw)
    try:
        with Image.open(io.BytesIO(raw), formats=_PIL_FORMATS.get(fmt or "", None)) as im:
            width, height = im.size
    except Image.DecompressionBombError as exc:
        raise ImageRejected("image is a decompression bomb", reason="bomb") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected("not a readable image", reason="not_image") from exc
    _check_pixels(width, height)
    return width, height


async def prepare_image(
    raw: bytes, *, max_side: int = MAX_SIDE, max_base64_bytes: int = MAX_BASE64_BYTES
) -> PreparedImage:
    """Validate and normalise `raw` to an RGB JPEG within `max_side` and `max_base64_bytes` (in a thread)."""
    return await asyncio.to_thread(_prepare, raw, max_side, max_base64_bytes)


def prepare(
    raw: bytes, *, max_side: int = MAX_SIDE, max_base64_bytes: int = MAX_BASE64_BYTES
) -> PreparedImage:
    """`prepare_image` for a caller already in a worker thread: the bot's upload check prepares each image
    once there and keeps the result for every later generation with it."""
    return _prepare(raw, max_side, max_base64_bytes)


def check_image(raw: bytes, *, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """Decode every pixel of `raw` exactly as `prepare_image` will, keep nothing; the fitted (width, height).

    For checking an upload when it arrives: an image whose header is fine but whose data is truncated or
    corrupt is refused then (ImageRejected "not_image"), not at generation time, when the user has moved
    on. The bomb guard runs before any pixel is decoded. Blocking CPU work: call it in a worker thread.
    """
    return _decode(raw, max_side).size


def _prepare(raw: bytes, max_side: int, max_base64_bytes: int) -> PreparedImage:
    return _encode_within(_decode(raw, max_side), max_base64_bytes)


def _decode(raw: bytes, max_side: int) -> Image.Image:
    """`raw` decoded to RGB (EXIF-oriented, alpha on white) and fitted within `max_side`; the size and pixel
    checks come first."""
    if len(raw) > MAX_INPUT_BYTES:
        raise ImageRejected(f"file is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MB", reason="too_large")
    fmt = sniff_format(raw)
    if fmt is None:
        raise _unrecognised(raw)
    try:
        with Image.open(io.BytesIO(raw), formats=_PIL_FORMATS[fmt]) as im:
            _check_pixels(*im.size)
            if min(im.size) < MIN_SIDE:
                raise ImageRejected(
                    f"image is {im.size[0]}x{im.size[1]} px; each side must be at least {MIN_SIDE} px",
                    reason="too_small",
                )
            _request_draft(im, max_side)
            rgb = _to_rgb(ImageOps.exif_transpose(im))
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageRejected("image is a decompression bomb", reason="bomb") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        # Truncated or corrupt data fails during decode, not during open.
        raise ImageRejected(f"the {fmt} data cannot be decoded", reason="not_image") from exc
    rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if min(rgb.size) < MIN_SIDE:
        raise ImageRejected(
            f"image is too narrow: after fitting {max_side} px it would be {rgb.size[0]}x{rgb.size[1]} px",
            reason="too_small",
        )
    return rgb


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageRejected(
            f"image is {width}x{height} px, above the {MAX_PIXELS // 1_000_000} megapixel safety limit",
            reason="bomb",
        )


def _unrecognised(raw: bytes) -> ImageRejected:
    """Tell "an image format we do not take" (GIF, TIFF, ...) apart from "not an image at all"."""
    try:
        with Image.open(io.BytesIO(raw[:65536])) as im:
            name = im.format or "this format"
    except Exception:  # any failure to identify means "not an image"
        return ImageRejected("not an image", reason="not_image")
    message = f"{name} images are not supported; send JPEG, PNG, WebP or HEIC"
    return ImageRejected(message, reason="unsupported")


def _request_draft(im: Image.Image, max_side: int) -> None:
    """Let the JPEG decoder scale down by 1/2..1/8 while decoding a photo far larger than we need."""
    if im.format not in ("JPEG", "MPO"):
        return
    width, height = im.size
    scale = min(1.0, max_side / max(width, height))
    if scale < 0.5:
        im.draft("RGB", (max(1, int(width * scale)), max(1, int(height * scale))))


def _to_rgb(im: Image.Image) -> Image.Image:
    """Flatten transparency onto white (what a chat client shows) rather than Pillow's default black."""
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, _WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if im.mode == "RGB":
        im.load()
        return im
    return im.convert("RGB")


def _encode_within(im: Image.Image, max_base64_bytes: int) -> PreparedImage:
    """Lower the JPEG quality first (cheap, invisible at 75+), then the size, until the base64 text fits."""
    while True:
        size = 0
        for quality in _JPEG_QUALITIES:
            buffer = io.BytesIO()
            im.save(buffer, format="JPEG", quality=quality, optimize=True)
            size = buffer.tell()
            if base64_length(size) <= max_base64_bytes:
                return PreparedImage(buffer.getvalue(), im.size[0], im.size[1])
        shrink = min(0.9, math.sqrt(max_base64_bytes / base64_length(size)) * 0.95)
        new_size = (int(im.size[0] * shrink), int(im.size[1] * shrink))
        if min(new_size) < MIN_SIDE:
            raise ImageRejected(
                f"cannot fit the image in {max_base64_bytes} bytes of base64", reason="too_large"
            )
        im = im.resize(new_size, Image.Resampling.LANCZOS)
