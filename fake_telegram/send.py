"""Bot methods that create or change messages: send*, edit*, deleteMessage, with Telegram's own refusals."""

from __future__ import annotations

import asyncio
from typing import Any

from fake_telegram.core import FakeCore
from fake_telegram.errors import NOT_MODIFIED, ApiError, bad_request
from fake_telegram.media import MAX_DOCUMENT_UPLOAD, MAX_PHOTO_UPLOAD, image_size
from fake_telegram.model import JSON, FakeChat, FakeMessage, StoredFile
from fake_telegram.params import Params, Upload
from fake_telegram.text import parse
from fake_telegram.transcript import describe

MAX_TEXT = 4096
MAX_CAPTION = 1024
TOO_LARGE = ApiError(413, "Request Entity Too Large")


def _text(p: Params, name: str, limit: int, *, required: bool) -> tuple[str | None, list[JSON]]:
    raw = p.string(name)
    if raw is None or raw == "":
        if required:
            raise bad_request("message text is empty")
        return None, []
    explicit = p.obj("entities" if name == "text" else "caption_entities")
    text, entities = parse(raw, p.string("parse_mode"))
    if explicit:
        entities = list(explicit)
    if len(text) > limit:
        raise bad_request("message is too long" if name == "text" else "message caption is too long")
    if required and not text.strip():
        raise bad_request("message text is empty")
    return text, entities


def inline_markup(p: Params) -> JSON | None:
    """The reply_markup a Message carries: only inline keyboards, checked as Telegram checks them."""
    markup = p.obj("reply_markup")
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        return None
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise bad_request("text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise bad_request("BUTTON_DATA_INVALID")
            if len(button) == 1:
                raise bad_request("text buttons are unallowed in the inline keyboard")
    return {"inline_keyboard": [[dict(button) for button in row] for row in rows if row]}


def _reply_target(fake: FakeCore, chat: FakeChat, p: Params) -> FakeMessage | None:
    reply = p.obj("reply_parameters")
    if isinstance(reply, dict):
        message_id, allow = reply.get("message_id"), bool(reply.get("allow_sending_without_reply"))
    else:
        message_id, allow = p.integer("reply_to_message_id"), p.flag("allow_sending_without_reply")
    if message_id is None:
        return None
    target = fake.messages.get((chat.id, int(message_id)))
    if target is None or target.deleted:
        if allow:
            return None
        raise bad_request("message to be replied not found")
    return target


def _finish(fake: FakeCore, message: FakeMessage) -> JSON:
    fake.note(message.chat, describe(message))
    return message.to_json()


async def send_message(fake: FakeCore, p: Params) -> Any:
    chat = fake.chat_for_send(p.chat_id())
    text, entities = _text(p, "text", MAX_TEXT, required=True)
    markup = inline_markup(p)
    reply_to = _reply_target(fake, chat, p)
    message = fake.new_message(
        chat, fake.bot_user, text=text, entities=entities, reply_to=reply_to, reply_markup=markup
    )
    return _finish(fake, message)


async def _upload(fake: FakeCore, p: Params, field: str, kind: str) -> list[StoredFile]:
    return await _resolve(fake, p, p.string(field), p.uploads.get(field), kind)


async def _resolve(
    fake: FakeCore, p: Params, ref: str | None, upload: Upload | None, kind: str
) -> list[StoredFile]:
    """The stored file(s) for an upload, an attach:// part or a file_id; photos get their size ladder."""
    if upload is None and ref and ref.startswith("attach://"):
        upload = p.uploads.get(ref.removeprefix("attach://"))
    if upload is None:
        if not ref:
            raise bad_request(f"there is no {kind} in the request")
        if ref.startswith(("http://", "https://")):
            raise bad_request("failed to get HTTP URL content")
        known = fake.files.get(ref)
        if known is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if known.kind != kind:
            raise bad_request(f"can't use file of type {known.kind.title()} as {kind.title()}")
        return fake.photo_sets[ref] if kind == "photo" else [known]
    if kind == "document":
        if len(upload.data) > MAX_DOCUMENT_UPLOAD:
            raise TOO_LARGE
        return [fake.store_document(upload.data, upload.filename, upload.content_type)]
    if len(upload.data) > MAX_PHOTO_UPLOAD:
        raise TOO_LARGE
    size = await asyncio.to_thread(image_size, upload.data)
    if size is None:
        raise bad_request("IMAGE_PROCESS_FAILED")
    width, height = size
    if width + height > 10_000 or max(width, height) > 20 * min(width, height):
        raise bad_request("PHOTO_INVALID_DIMENSIONS")
    return fake.store_photo(upload.data, width, height)


async def _send_media(fake: FakeCore, p: Params, kind: str) -> Any:
    chat = fake.chat_for_send(p.chat_id())
    caption, caption_entities = _text(p, "caption", MAX_CAPTION, required=False)
    markup = inline_markup(p)
    reply_to = _reply_target(fake, chat, p)
    stored = await _upload(fake, p, kind, kind)
    message = fake.new_message(
        chat, fake.bot_user, caption=caption, caption_entities=caption_entities,
        reply_to=reply_to, reply_markup=markup,
        photo=stored if kind == "photo" else [], document=stored[0] if kind == "document" else None,
    )  # fmt: skip
    return _finish(fake, message)


async def send_photo(fake: FakeCore, p: Params) -> Any:
    return await _send_media(fake, p, "photo")


async def send_document(fake: FakeCore, p: Params) -> Any:
    return await _send_media(fake, p, "document")


async def send_media_group(fake: FakeCore, p: Params) -> Any:
    """An album: 2-10 photos or documents sharing a media_group_id, answered with a list of messages."""
    chat = fake.chat_for_send(p.chat_id())
    media = p.obj("media")
    if not isinstance(media, list) or not 2 <= len(media) <= 10:
        raise bad_request("wrong number of media in the group: must be 2-10")
    reply_to = _reply_target(fake, chat, p)
    group_id = f"{13_000_000_000_000 + len(fake.messages)}"
    prepared = []
    for item in media:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind not in ("photo", "document"):
            raise bad_request("unsupported media type in the album")
        caption, entities = parse(item.get("caption") or "", item.get("parse_mode"))
        if len(caption) > MAX_CAPTION:
            raise bad_request("message caption is too long")
        stored = await _resolve(fake, p, str(item.get("media") or ""), None, kind)
        prepared.append((kind, stored, caption or None, entities))
    messages = [
        fake.new_message(
            chat, fake.bot_user, caption=caption, caption_entities=entities, reply_to=reply_to,
            media_group_id=group_id, photo=stored if kind == "photo" else [],
            document=stored[0] if kind == "document" else None,
        )
        for kind, stored, caption, entities in prepared
    ]  # fmt: skip
    return [_finish(fake, message) for message in messages]


def _editable(fake: FakeCore, p: Params) -> FakeMessage:
    if p.has("inline_message_id"):
        raise bad_request("message to edit not found")
    chat = fake.chat_for_send(p.chat_id())
    message = fake.find_message(chat.id, p.integer("message_id"), missing="message to edit not found")
    if not message.from_bot:
        raise bad_request("message can't be edited")
    return message


def _apply_edit(fake: FakeCore, message: FakeMessage, changes: JSON) -> JSON:
    if all(getattr(message, key) == value for key, value in changes.items()):
        raise bad_request(NOT_MODIFIED)
    message.history.append(message.body)
    for key, value in changes.items():
        setattr(message, key, value)
    message.edit_date = int(fake.clock())
    fake.note(message.chat, describe(message, edited=True))
    return message.to_json()


async def edit_message_text(fake: FakeCore, p: Params) -> Any:
    message = _editable(fake, p)
    if message.text is None:
        raise bad_request("there is no text in the message to edit")
    text, entities = _text(p, "text", MAX_TEXT, required=True)
    return _apply_edit(fake, message, {"text": text, "entities": entities, "reply_markup": inline_markup(p)})


async def edit_message_caption(fake: FakeCore, p: Params) -> Any:
    message = _editable(fake, p)
    if message.text is not None:
        raise bad_request("there is no caption in the message to edit")
    caption, entities = _text(p, "caption", MAX_CAPTION, required=False)
    changes = {"caption": caption, "caption_entities": entities, "reply_markup": inline_markup(p)}
    return _apply_edit(fake, message, changes)


async def edit_message_reply_markup(fake: FakeCore, p: Params) -> Any:
    message = _editable(fake, p)
    return _apply_edit(fake, message, {"reply_markup": inline_markup(p)})


async def delete_message(fake: FakeCore, p: Params) -> Any:
    chat = fake.chat_for_send(p.chat_id())
    message = fake.find_message(chat.id, p.integer("message_id"), missing="message to delete not found")
    message.deleted = True
    fake.note(
        chat, f"#{message.message_id} {'bot' if message.from_bot else message.sender.first_name} (deleted)"
    )
    return True
