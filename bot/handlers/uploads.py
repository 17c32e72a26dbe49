"""Turn an incoming photo or file into a stored image reference, or a friendly reason why not.

Why check at upload time: a user who sends a PDF or a 30 MB scan should hear so at once, not minutes later
when a generation fails. Compressed photos are always images (Telegram re-encodes them), so only their
size is checked, from metadata. Files sent "as document" are judged by their bytes, never by the name or
the MIME type the client claims: the header is read (cheap, no pixel decoding, in a thread) to catch
non-images, tiny images and decompression bombs. Only the Telegram file id is kept; the runner downloads
the file again when it builds the request, so nothing large sits in the database or in memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from telegram import Bot, Message

from api_client.errors import ImageRejected
from api_client.images import MIN_SIDE, read_header_size, sniff_format
from bot.replies.errors import upload_refusal

MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # getFile refuses more (Bot API limit without a local server)
ACCEPTED_FORMATS = frozenset({"jpeg", "png", "bmp", "webp", "heif"})


@dataclass(frozen=True)
class ImageRef:
    """A Telegram file we accepted as an image."""

    file_id: str
    unique_id: str


class UploadRejected(Exception):
    """A received picture cannot be used: the reply comes from the error table (`upload_refusal`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = upload_refusal(reason)

    @classmethod
    def because(cls, reason: str) -> UploadRejected:
        return cls(reason)


def has_image(message: Message) -> bool:
    """A photo, or any document (judged later by its bytes)."""
    return bool(message.photo) or message.document is not None


async def accept_image(message: Message, bot: Bot) -> ImageRef:
    """The image reference in `message`, or UploadRejected with the reason in catalogue terms."""
    if message.photo:
        photo = message.photo[-1]  # sizes arrive smallest first
        if min(photo.width, photo.height) < MIN_SIDE:
            raise UploadRejected.because("too_small")
        return ImageRef(photo.file_id, photo.file_unique_id)
    document = message.document
    if document is None:
        raise UploadRejected.because("not_image")
    if document.file_size is not None and document.file_size > MAX_DOWNLOAD_BYTES:
        raise UploadRejected.because("too_large")
    raw = bytes(await (await bot.get_file(document.file_id)).download_as_bytearray())
    await _check_bytes(raw)
    return ImageRef(document.file_id, document.file_unique_id)


async def _check_bytes(raw: bytes) -> None:
    if len(raw) > MAX_DOWNLOAD_BYTES:
        raise UploadRejected.because("too_large")
    if sniff_format(raw) not in ACCEPTED_FORMATS:
        raise UploadRejected.because("not_image")
    try:
        width, height = await asyncio.to_thread(read_header_size, raw)
    except ImageRejected as exc:
        raise UploadRejected.because(exc.reason) from None
    if min(width, height) < MIN_SIDE:
        raise UploadRejected.because("too_small")
