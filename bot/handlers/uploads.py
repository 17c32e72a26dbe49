"""Turn an incoming photo or file into a stored image reference, or a friendly reason why not.

Why check at upload time: a user who sends a PDF, a 30 MB scan or a broken picture should hear so at once,
not minutes later when a generation fails (and blames a picture they no longer think about). So every
received image, compressed photo or file, selfie or style image, is downloaded and decoded in full, in a
worker thread, with the decompression-bomb guard, by the same code that prepares it for the service
(`api_client.images.check_image`): what is accepted here will decode at generation time. Sizes are read
from metadata first, so what is too large or too small is refused before a byte is downloaded; downloads
and checks are bounded process-wide (bot/handlers/downloads.py). Files sent "as document" are judged by
their bytes, never by the name or the MIME type the client claims. Only the Telegram file id is kept; the
runner takes the image prepared here from `bot.jobs.prepared` (or downloads it again when it is gone), so
nothing large sits in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from telegram import Message

from api_client.errors import ImageRejected
from api_client.images import MIN_SIDE
from bot.handlers.downloads import DownloadFailed
from bot.replies.errors import upload_refusal

if TYPE_CHECKING:
    from bot.handlers.context import BotContext


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


async def accept_image(message: Message, context: BotContext) -> ImageRef:
    """The image reference in `message`, or UploadRejected with the reason in catalogue terms."""
    if message.photo:
        photo = message.photo[-1]  # sizes arrive smallest first
        if min(photo.width, photo.height) < MIN_SIDE:
            raise UploadRejected.because("too_small")
        ref, size = ImageRef(photo.file_id, photo.file_unique_id), photo.file_size
    elif message.document is not None:
        document = message.document
        ref, size = ImageRef(document.file_id, document.file_unique_id), document.file_size
    else:
        raise UploadRejected.because("not_image")
    try:
        await context.services.downloads.check(context.bot, ref.file_id, size, unique_id=ref.unique_id)
    except ImageRejected as exc:
        raise UploadRejected.because(exc.reason) from None
    except DownloadFailed:
        raise UploadRejected.because("fetch_failed") from None
    return ref
