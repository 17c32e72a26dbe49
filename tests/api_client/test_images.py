"""prepare_image: what users upload becomes an RGB JPEG within the limits, or a named refusal."""

from __future__ import annotations

import asyncio
import base64
import io
import random
import struct
import zlib
from typing import Any

import pillow_heif
import pytest
from PIL import Image

from api_client.errors import ImageRejected
from api_client.images import MAX_BASE64_BYTES, PreparedImage, prepare_image, read_header_size, sniff_format

pillow_heif.register_heif_opener()


def encode(image: Image.Image, fmt: str = "JPEG", **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def solid(size: tuple[int, int], color: Any = "red", mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, color)


def noise(size: tuple[int, int], seed: int = 1) -> Image.Image:
    return Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose header claims `width` x `height` (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def decoded(prepared: PreparedImage) -> Image.Image:
    image = Image.open(io.BytesIO(prepared.data))
    image.load()
    return image


async def rejected(raw: bytes, **kwargs: Any) -> str:
    with pytest.raises(ImageRejected) as info:
        await prepare_image(raw, **kwargs)
    return info.value.reason


@pytest.mark.parametrize(
    ("fmt", "name", "mode"),
    [("JPEG", "jpeg", "RGB"), ("PNG", "png", "RGBA"), ("BMP", "bmp", "RGB"), ("WEBP", "webp", "RGB"),
     ("HEIF", "heif", "RGB")],
)
def test_sniff_format_known(fmt: str, name: str, mode: str) -> None:
    assert sniff_format(encode(solid((200, 200), mode=mode), fmt)) == name


@pytest.mark.parametrize(
    "raw", [b"", b"hello", b"BM" + b"\x00" * 40, b"GIF89a" + b"\x00" * 20, b"RIFF\x00\x00\x00\x00WAVE"]
)
def test_sniff_format_unknown(raw: bytes) -> None:
    assert sniff_format(raw) is None


async def test_jpeg_passes_through_as_rgb_jpeg() -> None:
    prepared = await prepare_image(encode(solid((640, 480))))
    assert (prepared.width, prepared.height) == (640, 480)
    image = decoded(prepared)
    assert image.format == "JPEG" and image.mode == "RGB" and image.size == (640, 480)


async def test_runs_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = asyncio.to_thread

    async def spy(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        calls.append(func.__name__)
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", spy)
    await prepare_image(encode(solid((200, 200))))
    assert calls == ["_prepare"]


async def test_exif_orientation_is_applied() -> None:
    # Stored landscape, left half red and right half blue; orientation 6 = rotate 90° clockwise to display.
    image = Image.new("RGB", (400, 200), "red")
    image.paste((0, 0, 255), (200, 0, 400, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    prepared = await prepare_image(encode(image, exif=exif.tobytes()))
    assert (prepared.width, prepared.height) == (200, 400)
    shown = decoded(prepared)
    top, bottom = shown.getpixel((100, 50)), shown.getpixel((100, 350))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60  # red on top after rotating clockwise
    assert bottom[2] > 200 and bottom[0] < 60
    assert 0x0112 not in shown.getexif()  # metadata (orientation, GPS) is not forwarded


async def test_png_alpha_is_flattened_on_white() -> None:
    image = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    image.paste((0, 128, 0, 255), (0, 0, 150, 300))
    shown = decoded(await prepare_image(encode(image, "PNG")))
    assert shown.mode == "RGB"
    right = shown.getpixel((250, 150))
    left = shown.getpixel((50, 150))
    assert isinstance(right, tuple) and min(right) > 245  # transparent became white, not black
    assert isinstance(left, tuple) and left[1] > 100 and left[0] < 30


async def test_palette_png_with_transparency() -> None:
    image = Image.new("P", (200, 200), 0)
    image.putpalette([0, 0, 0] * 256)
    shown = decoded(await prepare_image(encode(image, "PNG", transparency=0)))
    pixel = shown.getpixel((10, 10))
    assert isinstance(pixel, tuple) and min(pixel) > 245


@pytest.mark.parametrize("fmt", ["WEBP", "HEIF", "BMP"])
async def test_other_inputs_become_jpeg(fmt: str) -> None:
    prepared = await prepare_image(encode(solid((320, 240), "blue"), fmt))
    image = decoded(prepared)
    assert image.format == "JPEG" and image.size == (320, 240)


async def test_cmyk_jpeg_becomes_rgb() -> None:
    shown = decoded(await prepare_image(encode(solid((200, 200), (0, 255, 255, 0), "CMYK"))))
    assert shown.mode == "RGB"


async def test_huge_photo_is_shrunk_to_4096() -> None:
    prepared = await prepare_image(encode(solid((5000, 2500)), quality=80))
    assert (prepared.width, prepared.height) == (4096, 2048)
    assert len(base64.b64encode(prepared.data)) <= MAX_BASE64_BYTES


async def test_max_side_is_respected() -> None:
    prepared = await prepare_image(encode(solid((3000, 1000))), max_side=1024)
    assert (prepared.width, prepared.height) == (1024, 341)


async def test_base64_limit_lowers_quality_then_size() -> None:
    raw = encode(noise((1600, 1600)), quality=100)
    assert len(base64.b64encode(raw)) > 2_000_000
    prepared = await prepare_image(raw, max_base64_bytes=600_000)
    assert len(base64.b64encode(prepared.data)) <= 600_000
    assert min(prepared.width, prepared.height) >= 128
    assert decoded(prepared).size == (prepared.width, prepared.height)


async def test_impossible_base64_limit_is_too_large() -> None:
    assert await rejected(encode(noise((600, 600))), max_base64_bytes=2_000) == "too_large"


async def test_bomb_by_header_is_refused_before_decoding() -> None:
    raw = png_claiming(8000, 8000)  # 64 MP: under Pillow's own limit, over ours; only 1 KB of data
    assert len(raw) < 2_000
    assert await rejected(raw) == "bomb"


async def test_bomb_beyond_pillow_limit_is_refused() -> None:
    assert await rejected(png_claiming(40_000, 40_000)) == "bomb"
    with pytest.raises(ImageRejected) as info:
        read_header_size(png_claiming(40_000, 40_000))
    assert info.value.reason == "bomb"


async def test_tiny_image_is_too_small() -> None:
    assert await rejected(encode(solid((127, 400)))) == "too_small"


async def test_sliver_that_would_shrink_below_128_is_too_small() -> None:
    assert await rejected(encode(solid((8000, 200)))) == "too_small"


@pytest.mark.parametrize("raw", [b"", b"not an image at all", b"%PDF-1.7\n" + b"0" * 500])
async def test_non_image_is_refused(raw: bytes) -> None:
    assert await rejected(raw) == "not_image"


async def test_30_mb_of_junk_is_refused_quickly() -> None:
    junk = random.Random(3).randbytes(30 * 1024 * 1024)
    assert await rejected(junk) == "not_image"


async def test_junk_above_50_mb_is_too_large() -> None:
    assert await rejected(b"\xff\xd8\xff" + bytes(51 * 1024 * 1024)) == "too_large"


async def test_truncated_jpeg_is_not_an_image() -> None:
    raw = encode(noise((400, 400)))
    assert await rejected(raw[: len(raw) // 3]) == "not_image"


async def test_jpeg_magic_with_garbage_is_not_an_image() -> None:
    assert await rejected(b"\xff\xd8\xff\xe0" + bytes(2048)) == "not_image"


async def test_gif_is_unsupported() -> None:
    assert await rejected(encode(solid((200, 200), 1, "P"), "GIF")) == "unsupported"
