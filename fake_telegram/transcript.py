"""One readable line per chat event, so a failing test or `make demo` shows the conversation, not JSON."""

from __future__ import annotations

from fake_telegram.media import image_size
from fake_telegram.model import FakeMessage, StoredFile


def _kilobytes(size: int) -> str:
    return f"{size / 1024:.1f} KB"


def _document(document: StoredFile) -> str:
    parts = [document.file_name or "file", document.mime_type or "?"]
    size = image_size(document.source) if (document.mime_type or "").startswith("image/") else None
    if size is not None:
        parts.append(f"{size[0]}x{size[1]}")
    parts.append(_kilobytes(document.size))
    return f"[document {' '.join(parts)}]"


def _origin(origin: dict[str, object]) -> str:
    for key in ("sender_user", "sender_chat", "chat"):
        value = origin.get(key)
        if isinstance(value, dict):
            return str(value.get("first_name") or value.get("title") or value.get("id"))
    return str(origin.get("sender_user_name", "?"))


def describe(message: FakeMessage, *, edited: bool = False) -> str:
    """`#12 bot (re #11): text` plus photo/document markers and the inline keyboard underneath."""
    who = "bot" if message.from_bot else message.sender.first_name
    tags = []
    if edited:
        tags.append("edited")
    if message.reply_to is not None and not edited:
        tags.append(f"re #{message.reply_to.message_id}")
    if message.sender_chat is not None:
        tags.append(f"as {message.sender_chat.label}")
    if message.forward_origin is not None:
        tags.append(f"forwarded from {_origin(message.forward_origin)}")
    if not message.delivered:
        tags.append("not delivered: privacy mode")
    head = f"#{message.message_id} {who}" + (f" ({', '.join(tags)})" if tags else "")
    pieces = []
    if message.photo:
        width, height = message.photo_dimensions or (0, 0)
        pieces.append(f"[photo {width}x{height}]")
    if message.document is not None:
        pieces.append(_document(message.document))
    if message.media_group_id:
        pieces.append(f"[album {message.media_group_id}]")
    if message.body:
        pieces.append(message.body)
    for key, value in message.service.items():
        if key == "invoice" and isinstance(value, dict):
            pieces.append(f"[invoice {value['title']}: {value['description']} — "
                          f"{value['total_amount']} {value['currency']}]")  # fmt: skip
            continue
        if isinstance(value, list):
            value = ", ".join(str(v.get("first_name", v)) if isinstance(v, dict) else str(v) for v in value)
        pieces.append(f"[{key} {value}]")
    first, *rest = " ".join(pieces).split("\n")
    body = "\n".join([first, *(f"    {line}" if line else "" for line in rest)])
    lines = [f"{head}: {body}"]
    keyboard = " | ".join(" ".join(f"[{text}]" for text, _ in row) for row in message.buttons)
    if keyboard:
        lines.append(f"    {keyboard}")
    return "\n".join(lines)
