"""The Telegram side of the job runner (`Notifier`): fetch the user's photos, show progress, send results.

Delivery is at most once. After a timeout on sendPhoto the photo may or may not have arrived, and sending
it again could show it twice, so `deliver` raises `DeliveryUncertain`: the runner ends the task done (the
unit is spent) and `unconfirmed` sends a note with "Send it again", which the user presses only if the
photo is not there (bot.jobs.resend). A 403 (the user blocked the bot, or the
bot left the group) becomes `RecipientGone` wherever it happens. A 429 that outlasted the rate limiter's
retries (nothing was sent) and a network error fetching a file become `TryLater`: the runner backs off.

Telegram recompresses photos (longest side about 1280 px), so the untouched file also goes out as a
document when the result is bigger than that, or when the task's params ask for it (`send_document`).

Where: the task's chat, replying to the request (`allow_sending_without_reply`, so a deleted request does
not lose the result). A group whose settings say `results_private` gets it in the requester's private chat
instead, falling back to the group when the requester never opened one (403 "can't initiate"). A group
that became a supergroup meanwhile (ChatMigrated) is followed once.

Pace: every message sent here (and every status edit) takes its turn in one `ChatPacer` per chat, so
results finishing together in a group go out one after another; the 20/minute per group and 30/s overall
are the Application's AIORateLimiter (see bot/pacing.py for who does what).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from telegram import Bot, InlineKeyboardMarkup, Message, MessageEntity, ReplyParameters, User
from telegram.constants import FileSizeLimit
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from api_client.clock import Clock, SystemClock
from api_client.errors import ImageRejected
from api_client.images import read_header_size
from bot.chat.alerts import AdminAlerts
from bot.chat.callbacks import resend_keyboard, result_keyboard
from bot.chat.pacing import ChatPacer
from bot.chat.progress import StatusReporter, queue_text
from bot.config import Settings
from bot.jobs.notifier import DeliveryUncertain, OnSend, OnSent, RecipientGone, Stage, TryLater
from bot.replies import t
from bot.replies.errors import FriendlyError
from storage import QueueEntry, Store, Task

__all__ = ["MAX_DOWNLOAD_BYTES", "RECOMPRESSED_ABOVE", "TelegramNotifier"]

log = logging.getLogger(__name__)

#: getFile refuses bigger files on the public Bot API (a self-hosted server would allow more).
MAX_DOWNLOAD_BYTES: Final = int(FileSizeLimit.FILESIZE_DOWNLOAD)
#: sendPhoto by upload: 10 MB, width + height <= 10000, aspect ratio <= 20.
MAX_PHOTO_BYTES: Final = int(FileSizeLimit.PHOTOSIZE_UPLOAD)
#: Telegram's photo sizes top out around here; a bigger result also goes out untouched, as a document.
RECOMPRESSED_ABOVE: Final = 1280
RESULT_FILENAME: Final = "portrait.jpg"
_MAX_NAME_CHARS: Final = 64  # Telegram's own limit for a first name


class TelegramNotifier:
    """`bot.jobs.notifier.Notifier` over a PTB `Bot`: per-chat pacing here, global limits in
    AIORateLimiter."""

    def __init__(
        self, bot: Bot, *, settings: Settings, clock: Clock | None = None, store: Store | None = None
    ) -> None:
        """`store` lets delivery honour a group's `results_private` (without it, results go to the group)."""
        self._bot = bot
        self._store = store
        self._settings = settings
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.pacer = ChatPacer(settings.chat_send_interval, clock=self._clock)
        self.progress = StatusReporter(
            bot,
            interval=settings.status_edit_interval,
            group_interval=settings.group_status_edit_interval,
            clock=self._clock,
            pacer=self.pacer,
        )
        self.alerts = AdminAlerts(
            bot,
            settings.admin_chat_id,
            interval=settings.admin_alert_interval,
            clock=self._clock,
            pacer=self.pacer,
        )

    async def download(self, file_id: str) -> bytes:
        try:
            file = await self._bot.get_file(file_id)
            if file.file_size is not None and file.file_size > MAX_DOWNLOAD_BYTES:
                raise ImageRejected("file is over the 20 MB Bot API download limit", reason="too_large")
            data = bytes(await file.download_as_bytearray())
        except BadRequest as exc:
            if "too big" in exc.message.lower():
                raise ImageRejected("file is over the Bot API download limit", reason="too_large") from exc
            raise ImageRejected("Telegram could not provide the file", reason="not_image") from exc
        except RetryAfter as exc:
            raise TryLater("getFile rate limited", retry_after=_seconds(exc)) from exc
        except NetworkError as exc:  # TimedOut, 5xx, connection: the file is still there later
            raise TryLater(f"fetching the file failed: {type(exc).__name__}") from exc
        if len(data) > MAX_DOWNLOAD_BYTES:
            raise ImageRejected("file is over the 20 MB Bot API download limit", reason="too_large")
        return data

    async def status(
        self, task: Task, stage: Stage, elapsed: float, *, lang: str, final: bool = False
    ) -> None:
        await self.progress.show(task, stage, elapsed, lang=lang, final=final)

    async def queue_place(self, task: QueueEntry, position: int, minutes: int, *, lang: str) -> None:
        await self.progress.edit(task, queue_text(position, minutes, lang))

    async def deliver(
        self,
        task: Task,
        image: bytes,
        *,
        lang: str,
        on_send: OnSend | None = None,
        on_sent: OnSent | None = None,
    ) -> str:
        width, height = _size(image)
        preset = str(task.params.get("preset") or "anime")
        result = _Result(
            image=image,
            caption=t("result.caption", lang, preset=t(f"preset.{preset}", lang)),
            keyboard=result_keyboard(task.id, lang),
            as_photo=_photo_ok(len(image), width, height),
            on_send=on_send,
            mention=await self._requester(task, lang),
        )
        chat_id, reply = await self._destination(task)
        private = chat_id != task.chat_id
        try:
            try:
                sent, as_photo = await self._send_result(task, chat_id, reply, result)
            except Forbidden:
                if not private:
                    raise
                # The requester never opened a private chat with the bot: deliver where they asked.
                log.info("task %d: private delivery refused; sending to the group", task.id)
                private = False
                sent, as_photo = await self._send_result(
                    task, task.chat_id, _reply_to(task.request_message_id), result
                )
        except Forbidden as exc:
            raise RecipientGone(task.chat_id) from exc
        except BadRequest:
            raise  # refused outright, so surely not delivered: the runner fails and refunds it
        except RetryAfter as exc:  # a 429 outlasting AIORateLimiter's retries: surely not delivered
            raise TryLater("sendPhoto rate limited", retry_after=_seconds(exc)) from exc
        except NetworkError as exc:  # TimedOut included: it may have arrived, so never resend
            raise DeliveryUncertain(f"sending the result failed midway: {type(exc).__name__}") from exc
        file_id = _file_id(sent)
        if on_sent is not None:
            await on_sent(file_id)
        try:  # extras: the portrait is delivered and recorded, nothing here may undo that
            if as_photo and (max(width, height) > RECOMPRESSED_ABOVE or task.params.get("send_document")):
                await self._full_size(task, sent, image, width, height, lang)
            await self._final_status(task, "status.sent_privately" if private else "status.done", lang)
        except Exception:
            log.warning("task %d: an extra after the result failed", task.id, exc_info=True)
        return file_id

    async def _destination(self, task: Task) -> tuple[int, ReplyParameters | None]:
        """The requester's private chat when their group asks for private results, else the task's chat."""
        if self._store is not None and task.chat_id != task.user_id:
            chat = await self._store.chats.get(task.chat_id)
            if chat is not None and chat.results_private:
                return task.user_id, None
        return task.chat_id, _reply_to(task.request_message_id)

    async def _send_result(
        self, task: Task, chat_id: int, reply: ReplyParameters | None, result: _Result
    ) -> tuple[Message, bool]:
        """Photo (or document when Telegram would refuse the photo); follows a supergroup migration once."""
        try:
            return await self._send_once(task, chat_id, reply, result)
        except ChatMigrated as exc:
            log.info("task %d: chat %d migrated to %d", task.id, chat_id, exc.new_chat_id)
            return await self._send_once(task, exc.new_chat_id, None, result)

    async def _send_once(
        self, task: Task, chat_id: int, reply: ReplyParameters | None, result: _Result
    ) -> tuple[Message, bool]:
        if result.as_photo:
            try:
                async with self.pacer.turn(chat_id):
                    await result.about_to_send()
                    message = await self._bot.send_photo(
                        chat_id, photo=result.image, reply_markup=result.keyboard,
                        reply_parameters=reply, filename=RESULT_FILENAME, **result.caption_in(chat_id),
                    )
                return message, True
            except BadRequest as exc:  # e.g. PHOTO_INVALID_DIMENSIONS: the document path still works
                if not _photo_refused(exc):
                    raise
                log.warning("task %d: photo refused (%s); sending as a document", task.id, exc.message)
        async with self.pacer.turn(chat_id):
            await result.about_to_send()
            message = await self._bot.send_document(
                chat_id, document=result.image, filename=RESULT_FILENAME, reply_markup=result.keyboard,
                reply_parameters=reply, **result.caption_in(chat_id),
            )
        return message, False

    async def _requester(self, task: Task, lang: str) -> _Mention | None:
        """Who asked, for a result shown in a group: the group issue asked that results name the requester
        (a reply alone is easy to miss in a busy group). The name is the stored one; a text_mention entity
        works for users without a username and needs no markup escaping."""
        if self._store is None or task.chat_id == task.user_id:
            return None
        user = await self._store.users.get(task.user_id)
        if user is None or not user.first_name:
            return None
        return _Mention(task.user_id, user.first_name[:_MAX_NAME_CHARS], lang)

    async def failed(self, task: Task, error: FriendlyError, lang: str) -> None:
        await self._note(task, error, lang)
        await self._final_status(task, "status.stopped", lang)

    async def unconfirmed(self, task: Task, error: FriendlyError, lang: str) -> None:
        """In the task's chat, where the requester pressed /anime (the button answers only them); the
        status ends on "done": the portrait was made."""
        await self._note(task, error, lang, keyboard=resend_keyboard(task.id, lang))
        await self._final_status(task, "status.done", lang)

    async def _note(
        self, task: Task, error: FriendlyError, lang: str, *, keyboard: InlineKeyboardMarkup | None = None
    ) -> None:
        text = t(error.key, lang, **error.values)
        if error.hint is not None:
            text = f"{text}\n\n{t(error.hint, lang)}"
        try:
            async with self.pacer.turn(task.chat_id):
                await self._bot.send_message(
                    task.chat_id, text, reply_parameters=_reply_to(task.request_message_id),
                    reply_markup=keyboard,
                )
        except Forbidden as exc:
            raise RecipientGone(task.chat_id) from exc

    async def admin_alert(self, text: str, *, kind: str = "other") -> None:
        await self.alerts.send(text, kind=kind)

    def forget(self, task_id: int) -> None:
        self.progress.forget(task_id)

    async def aclose(self) -> None:
        await self.progress.aclose()

    async def _full_size(
        self, task: Task, photo: Message, image: bytes, width: int, height: int, lang: str
    ) -> None:
        """Best effort: the photo already arrived, so a failure here must not fail (and refund) the task."""
        try:
            async with self.pacer.turn(photo.chat_id):
                await self._bot.send_document(
                    photo.chat_id, document=image, filename=RESULT_FILENAME,
                    caption=t("result.document_caption", lang, width=width, height=height),
                    reply_parameters=_reply_to(photo.message_id),
                )
        except TelegramError as exc:
            log.warning("task %d: full-size document not sent: %s", task.id, type(exc).__name__)

    async def _final_status(self, task: Task, key: str, lang: str) -> None:
        elapsed = max(0, round(self._clock.now() - task.created_at))
        try:
            await self.progress.edit(task, t(key, lang, elapsed=elapsed), final=True)
        except RecipientGone:
            log.info("task %d: final status not shown, chat is gone", task.id)
        self.progress.forget(task.id)


def _seconds(exc: RetryAfter) -> float:
    """RetryAfter.retry_after is an int or a timedelta depending on PTB's settings."""
    with warnings.catch_warnings():  # reading it warns about the future timedelta type
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _reply_to(message_id: int | None) -> ReplyParameters | None:
    if message_id is None:
        return None
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)


@dataclass(frozen=True)
class _Mention:
    user_id: int
    name: str
    lang: str

    def caption(self, caption: str) -> dict[str, Any]:
        """`caption` naming the requester, with the text_mention entity (offsets in UTF-16 units)."""
        marker = "\x00"
        template = t("result.caption_for", self.lang, caption=caption, name=marker)
        before, _, after = template.partition(marker)
        entity = MessageEntity(
            MessageEntity.TEXT_MENTION, _utf16_len(before), _utf16_len(self.name),
            user=User(self.user_id, self.name, is_bot=False),
        )  # fmt: skip
        return {"caption": before + self.name + after, "caption_entities": [entity]}


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class _Result:
    image: bytes
    caption: str
    keyboard: InlineKeyboardMarkup
    as_photo: bool
    on_send: OnSend | None = None
    mention: _Mention | None = None

    def caption_in(self, chat_id: int) -> dict[str, Any]:
        """The caption for `chat_id`: naming the requester anywhere but their own private chat."""
        if self.mention is None or chat_id == self.mention.user_id:
            return {"caption": self.caption}
        return self.mention.caption(self.caption)

    async def about_to_send(self) -> None:
        """Inside the chat's turn, right before the request: the caller's "may be out from here" hook."""
        if self.on_send is not None:
            await self.on_send()


def _photo_refused(exc: BadRequest) -> bool:
    """Telegram refusing the picture as a photo (size, dimensions), not the chat or the request."""
    text = exc.message.lower()
    return "photo" in text or "image" in text or "dimension" in text


def _size(image: bytes) -> tuple[int, int]:
    try:
        return read_header_size(image)
    except (ImageRejected, ValueError):
        return 0, 0


def _photo_ok(size: int, width: int, height: int) -> bool:
    if size > MAX_PHOTO_BYTES or width <= 0 or height <= 0:
        return False
    return width + height <= 10_000 and max(width, height) / min(width, height) <= 20


def _file_id(message: Message) -> str:
    if message.photo:
        return message.photo[-1].file_id
    if message.document is not None:
        return message.document.file_id
    return f"message:{message.message_id}"

