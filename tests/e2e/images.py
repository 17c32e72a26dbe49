"""Inputs for the conversations, drawn with Pillow so the repository carries no binary fixtures."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageDraw

from demo.scripted_chat import draw_selfie, draw_style

__all__ = ["bomb_png", "draw_selfie", "draw_style", "jpeg", "magenta_selfie", "tiny_photo"]


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def magenta_selfie(size: int = 512) -> bytes:
    """A selfie whose centre is pure magenta: the emulator's input-image risk trigger (50411)."""
    image = Image.open(io.BytesIO(draw_selfie(size))).convert("RGB")
    draw = ImageDraw.Draw(image)
    c = size // 2
    draw.rectangle((c - 40, c - 40, c + 40, c + 40), fill=(255, 0, 255))
    return jpeg(image)


def tiny_photo() -> bytes:
    """64 x 64: below the service's 128 px minimum side."""
    return jpeg(Image.new("RGB", (64, 64), (200, 150, 120)))


def bomb_png(side: int = 9_000) -> bytes:
    """A few hundred bytes whose header claims side x side pixels (81 MP, over the 50 MP guard)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
